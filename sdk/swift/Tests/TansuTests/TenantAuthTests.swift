// NOTE: written without a Swift toolchain and never compiled or run; see README.md.
import Connect
import Foundation
import Tansu
import XCTest

/// TenantAuth end to end against a running Tansu server, once per transport. Needs TANSU_URL
/// (such as http://127.0.0.1:8080) and TANSU_TENANT; without them the tests fail rather than skip.
final class TenantAuthTests: XCTestCase {
    private var url = ""
    private var tenant = ""
    private let password = "Sdk-\(UUID().uuidString)"

    override func setUpWithError() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let url = environment["TANSU_URL"], !url.isEmpty,
              let tenant = environment["TANSU_TENANT"], !tenant.isEmpty
        else {
            // A thrown error fails the test and skips its body; XCTSkip would hide a broken run.
            throw MissingServer()
        }
        self.url = url
        self.tenant = tenant
    }

    func testSignUpSignInAndCurrentUser() async throws {
        for transport in TansuTransport.allCases {
            let tansu = TansuClient(baseURL: self.url, tenant: self.tenant, transport: transport)
            let email = self.uniqueEmail(transport)

            let signedUp = try await tansu.signUp(email: email, password: self.password)
            XCTAssertEqual(signedUp.user.email, email, "\(transport)")

            let signedIn = try await tansu.signIn(email: email, password: self.password)
            XCTAssertEqual(signedIn.user.id, signedUp.user.id, "\(transport)")

            let user = try await tansu.currentUser()
            XCTAssertEqual(user.email, email, "\(transport)")
        }
    }

    func testRefreshAfterRejectedAccessToken() async throws {
        for transport in TansuTransport.allCases {
            let tansu = TansuClient(baseURL: self.url, tenant: self.tenant, transport: transport)
            let email = self.uniqueEmail(transport)
            try await tansu.signUp(email: email, password: self.password)
            let refreshToken = try XCTUnwrap(await tansu.tokens?.refreshToken)

            await tansu.setTokens(TansuTokens(accessToken: "not-a-jwt", refreshToken: refreshToken))
            let user = try await tansu.currentUser()

            XCTAssertEqual(user.email, email, "\(transport)")
            let rotated = try XCTUnwrap(await tansu.tokens)
            XCTAssertNotEqual(rotated.accessToken, "not-a-jwt", "\(transport)")
            XCTAssertNotEqual(rotated.refreshToken, refreshToken, "\(transport)")
        }
    }

    func testSignOutEndsSession() async throws {
        for transport in TansuTransport.allCases {
            let tansu = TansuClient(baseURL: self.url, tenant: self.tenant, transport: transport)
            try await tansu.signUp(email: self.uniqueEmail(transport), password: self.password)
            let ended = try XCTUnwrap(await tansu.tokens)

            try await tansu.signOut()
            await tansu.setTokens(ended)

            do {
                try await tansu.refresh()
                XCTFail("refresh after sign-out must fail (\(transport))")
            } catch let error as ConnectError {
                XCTAssertEqual(error.code, .unauthenticated, "\(transport)")
            }
            let remaining = await tansu.tokens
            XCTAssertNil(remaining, "\(transport)")
        }
    }

    /// Thrown by setUp when the environment names no server.
    private struct MissingServer: Error, CustomStringConvertible {
        let description =
            "TANSU_URL and TANSU_TENANT must name a running Tansu server and an existing tenant, "
            + "e.g. TANSU_URL=http://127.0.0.1:8080 TANSU_TENANT=acme swift test"
    }

    private func uniqueEmail(_ transport: TansuTransport) -> String {
        "sdk-swift-\(transport)-\(UUID().uuidString.lowercased())@example.com"
    }
}
