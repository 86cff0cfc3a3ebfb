// Very common passwords, written for this project from widely known patterns: dictionary
// words people pick, digit runs, keyboard walks, and those with the usual endings (1, 123,
// !, a year). Compared in lower case. The list is small on purpose: it catches the passwords
// that online guessing tries first, and it is no substitute for a breach corpus.

const words = [
  'password', 'passw0rd', 'p@ssword', 'p@ssw0rd', 'pass', 'letmein', 'welcome', 'admin',
  'administrator', 'root', 'login', 'master', 'secret', 'access', 'default', 'changeme',
  'iloveyou', 'loveyou', 'lovely', 'love', 'sunshine', 'princess', 'prince', 'dragon',
  'monkey', 'shadow', 'football', 'baseball', 'soccer', 'hockey', 'basketball', 'superman',
  'batman', 'spiderman', 'starwars', 'pokemon', 'naruto', 'michael', 'jennifer', 'jessica',
  'charlie', 'daniel', 'thomas', 'andrew', 'joshua', 'jordan', 'hunter', 'ranger', 'killer',
  'trustno1', 'whatever', 'freedom', 'flower', 'cookie', 'cheese', 'chocolate', 'summer',
  'winter', 'autumn', 'spring', 'yellow', 'purple', 'orange', 'banana', 'apple', 'maggie',
  'buster', 'tigger', 'ginger', 'pepper', 'hello', 'helloworld', 'computer', 'internet',
  'google', 'facebook', 'secure', 'security', 'test', 'testing', 'tester', 'guest', 'user',
  'qwerty', 'qwertz', 'azerty', 'asdf', 'asdfgh', 'asdfghjkl', 'zxcvbn', 'zxcvbnm',
  'qwertyuiop', 'qazwsx', 'qazwsxedc', '1qaz2wsx', '1q2w3e4r', '1q2w3e', 'q1w2e3r4',
  'abc', 'abcd', 'abcdef', 'abcdefg', 'abcdefgh', 'abc123', 'a1b2c3', 'a1b2c3d4', 'aaaaaa',
  'football1', 'baseball1', 'mustang', 'ferrari', 'corvette', 'harley', 'matrix', 'soccer1',
  'samsung', 'iphone', 'android', 'nintendo', 'minecraft', 'fortnite', 'liverpool',
  'chelsea', 'arsenal', 'barcelona', 'madrid', 'america', 'london', 'paris', 'berlin',
  'angel', 'angels', 'babygirl', 'baby', 'sweetie', 'honey', 'family', 'friends', 'forever',
  'heaven', 'jesus', 'blessed', 'lucky', 'happy', 'smile', 'money', 'rockstar', 'superstar',
  'hottie', 'sexy', 'lovers', 'mother', 'father', 'sister', 'brother', 'mylove', 'loveme',
  'blink182', 'zaq12wsx', 'zaq1xsw2', 'unknown', 'nothing', 'passport', 'office', 'company',
  'dashboard', 'manager', 'service', 'support', 'server', 'database', 'oracle', 'postgres',
];

const digitRuns = [
  '1234', '12345', '123456', '1234567', '12345678', '123456789', '1234567890', '0987654321',
  '987654321', '87654321', '654321', '123123', '123123123', '321321', '112233', '11223344',
  '121212', '123321', '12344321', '147258', '147258369', '159753', '159357', '753951',
  '789456', '789456123', '456789', '246810', '135790', '13579', '2468', '1111', '0000',
  '000000', '00000000', '111111', '11111111', '222222', '333333', '444444', '555555',
  '666666', '6666666', '777777', '888888', '88888888', '999999', '99999999', '101010',
  '202020', '696969', '1212', '7777777', '1122334455', '0123456789', '5201314', '520520',
];

// Keyboard walks and the most common variants of `password`, `welcome` and `admin`.
const walksAndVariants = [
  'qwerty123', 'qwertyui', 'qwerty12', 'qwert', 'asdfasdf', 'asdf1234', 'qweasd', 'qweasdzxc',
  'qweqwe', 'qwe123', 'asd123', 'zxc123', 'zxcasdqwe', '1qazxsw2', 'qwer1234', '1234qwer',
  'qwerasdf', 'poiuytrewq', 'mnbvcxz', 'lkjhgfdsa', 'ytrewq', '!qaz2wsx', '!qaz@wsx',
  '1qaz!qaz', 'q2w3e4r5', 'q1w2e3r4t5', '1q2w3e4r5t', 'aaaaaaaa', 'abcabc', 'abcd1234',
  'password1', 'password12', 'password123', 'password1234', 'password!', 'password1!',
  'passw0rd!', 'p@ssw0rd1', 'p@ssword1', 'welcome1', 'welcome123', 'welcome!', 'admin123',
  'admin1234', 'admin@123', 'letmein1', 'letmein123', 'iloveyou1', 'changeme1', 'secret123',
];

const endings = ['1', '12', '123', '1234', '!', '1!', '123!', '01', '007', '69', '2020',
  '2021', '2022', '2023', '2024', '2025', '2026'];

function buildList(): Set<string> {
  const list = new Set<string>([...words, ...digitRuns, ...walksAndVariants]);
  for (const word of words) {
    for (const ending of endings) list.add(`${word}${ending}`);
  }
  return list;
}

const commonPasswords: ReadonlySet<string> = buildList();
const commonWords: ReadonlySet<string> = new Set(words);

const TRAILING_DIGITS_AND_SYMBOLS = /[^a-z]+$/;
const LEET: Record<string, string> = { '0': 'o', '1': 'i', '3': 'e', '4': 'a', '5': 's', '7': 't', '@': 'a', '$': 's' };

/**
 * Reports whether `password` is on the common list, in any letter case, or is a listed word
 * followed only by digits and symbols (`Dragon2019!`), or a listed word in simple leetspeak
 * (`M0nk3y`).
 */
export function isCommonPassword(password: string): boolean {
  const lower = password.toLowerCase();
  if (commonPasswords.has(lower)) return true;

  const stem = lower.replace(TRAILING_DIGITS_AND_SYMBOLS, '');
  if (stem.length > 0 && stem !== lower && commonWords.has(stem)) return true;

  const unLeet = lower.replace(/[013457@$]/g, (character) => LEET[character]);
  return commonWords.has(unLeet) || commonWords.has(unLeet.replace(TRAILING_DIGITS_AND_SYMBOLS, ''));
}
