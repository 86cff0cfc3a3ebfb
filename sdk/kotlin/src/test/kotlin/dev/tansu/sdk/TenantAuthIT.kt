package dev.tansu.sdk

import com.connectrpc.Code
import com.connectrpc.ConnectException
import java.util.UUID
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assertions.fail
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.EnumSource
import tansu.identity.v1.Auth.GetCurrentUserRequest
import tansu.identity.v1.Auth.GetCurrentUserResponse

/**
 * TenantAuth end to end against a running Tansu server, once per [Transport].
 *
 * Needs TANSU_URL (such as http://127.0.0.1:8080) and TANSU_TENANT (an existing tenant id).
 * Without them every test fails, because the project's test runner always sets them and a skip
 * would hide a broken run.
 */
class TenantAuthIT {
    private val server: Server = Server.fromEnvironment()

    @ParameterizedTest
    @EnumSource(Transport::class)
    fun signUpSignInAndCurrentUser(transport: Transport) = runBlocking {
        val tansu = TansuClient(server.url, server.tenant, transport)
        val email = uniqueEmail(transport)

        val signedUp = tansu.signUp(email, PASSWORD, displayName = "SDK $transport")
        assertEquals(email, signedUp.user.email)
        assertEquals("Bearer", signedUp.tokenType)
        assertTrue(signedUp.expiresIn > 0, "expires_in must be positive, got ${signedUp.expiresIn}")

        val signedIn = tansu.signIn(email, PASSWORD)
        assertEquals(signedUp.user.id, signedIn.user.id)

        val user = tansu.currentUser()
        assertEquals(signedUp.user.id, user.id)
        assertEquals(email, user.email)
        assertEquals("SDK $transport", user.displayName)
    }

    @ParameterizedTest
    @EnumSource(Transport::class)
    fun refreshRotatesTokens(transport: Transport) = runBlocking {
        val tansu = TansuClient(server.url, server.tenant, transport)
        val email = uniqueEmail(transport)
        tansu.signUp(email, PASSWORD)
        val before = tansu.currentTokens!!

        val refreshed = tansu.refresh()

        assertNotEquals(before.refreshToken, refreshed.refreshToken)
        assertEquals(Tokens(refreshed.accessToken, refreshed.refreshToken), tansu.currentTokens)
        assertEquals(email, tansu.currentUser().email)
    }

    @ParameterizedTest
    @EnumSource(Transport::class)
    fun rejectedAccessTokenRefreshesOnce(transport: Transport) = runBlocking {
        val tansu = TansuClient(server.url, server.tenant, transport)
        val email = uniqueEmail(transport)
        tansu.signUp(email, PASSWORD)
        val refreshToken = tansu.currentTokens!!.refreshToken

        // A garbage access token gets UNAUTHENTICATED; the client must refresh and retry.
        tansu.setTokens(Tokens("not-a-jwt", refreshToken))
        val user = tansu.currentUser()

        assertEquals(email, user.email)
        assertNotEquals("not-a-jwt", tansu.currentTokens!!.accessToken)
        assertNotEquals(refreshToken, tansu.currentTokens!!.refreshToken)
    }

    @ParameterizedTest
    @EnumSource(Transport::class)
    fun signOutEndsSession(transport: Transport) = runBlocking {
        val tansu = TansuClient(server.url, server.tenant, transport)
        tansu.signUp(uniqueEmail(transport), PASSWORD)
        val ended = tansu.currentTokens!!

        tansu.signOut()
        assertNull(tansu.currentTokens)

        tansu.setTokens(ended)
        val error = assertThrows<ConnectException> { runBlocking { tansu.refresh() } }
        assertEquals(Code.UNAUTHENTICATED, error.code)
        assertNull(tansu.currentTokens)
    }

    @ParameterizedTest
    @EnumSource(Transport::class)
    fun missingTokenIsUnauthenticated(transport: Transport) = runBlocking {
        val tansu = TansuClient(server.url, server.tenant, transport)

        val error = assertThrows<ConnectException> {
            runBlocking {
                tansu.authorized<GetCurrentUserResponse> {
                    tansu.auth.getCurrentUser(GetCurrentUserRequest.newBuilder().setTenant(server.tenant).build())
                }
            }
        }
        assertEquals(Code.UNAUTHENTICATED, error.code)
    }

    @ParameterizedTest
    @EnumSource(Transport::class)
    fun takenEmailIsAlreadyExists(transport: Transport) = runBlocking {
        val tansu = TansuClient(server.url, server.tenant, transport)
        val email = uniqueEmail(transport)
        tansu.signUp(email, PASSWORD)

        val error = assertThrows<ConnectException> { runBlocking { tansu.signUp(email.uppercase(), PASSWORD) } }
        assertEquals(Code.ALREADY_EXISTS, error.code)
        assertTrue(error.reason != null, "error must carry a google.rpc.ErrorInfo reason: $error")
    }

    private fun uniqueEmail(transport: Transport): String =
        "sdk-kotlin-${transport.name.lowercase()}-${UUID.randomUUID()}@example.com"

    /** Server under test, read from the environment. */
    private data class Server(val url: String, val tenant: String) {
        companion object {
            fun fromEnvironment(): Server {
                val url = System.getenv("TANSU_URL")
                val tenant = System.getenv("TANSU_TENANT")
                if (url.isNullOrBlank() || tenant.isNullOrBlank()) {
                    fail<Unit>(
                        "TANSU_URL and TANSU_TENANT must be set to a running Tansu server and an " +
                            "existing tenant, e.g. TANSU_URL=http://127.0.0.1:8080 TANSU_TENANT=acme " +
                            "mvn -f sdk/kotlin/pom.xml verify (TANSU_URL='${url.orEmpty()}', " +
                            "TANSU_TENANT='${tenant.orEmpty()}')",
                    )
                }
                return Server(url!!.trimEnd('/'), tenant!!)
            }
        }
    }

    private companion object {
        // Random, so no tenant password policy can reject it as a commonly used password.
        val PASSWORD = "Sdk-${UUID.randomUUID()}"
    }
}
