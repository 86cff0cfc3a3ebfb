// NOTE: written without a Swift toolchain and never compiled or run; see README.md.
import Connect
import ConnectNIO
import Foundation

/// Wire protocol and encoding a `TansuClient` speaks. The Tansu server accepts all four on one port.
public enum TansuTransport: Sendable, CaseIterable {
    /// Connect protocol with JSON bodies, over URLSession.
    case connectJSON
    /// Connect protocol with binary protobuf bodies, over URLSession.
    case connectProto
    /// gRPC with protobuf over SwiftNIO, which speaks HTTP/2 without TLS (h2c) for `http://` hosts.
    case grpc
    /// gRPC-Web with protobuf, over URLSession.
    case grpcWeb
}

/// A signed-in session: the bearer access token and the refresh token that rotates with it.
public struct TansuTokens: Sendable, Equatable {
    /// Access token sent as `Authorization: Bearer …`.
    public var accessToken: String
    /// Opaque token that TenantAuth.Refresh exchanges for the next pair.
    public var refreshToken: String

    public init(accessToken: String, refreshToken: String) {
        self.accessToken = accessToken
        self.refreshToken = refreshToken
    }
}

/// Errors the helper raises on top of the server's `ConnectError`s.
public enum TansuClientError: Error, Equatable {
    /// A call needed a session, but no tokens are held. Sign in or up first.
    case notSignedIn
}

/// Client for one tenant of a Tansu server, mirroring the Kotlin SDK's `TansuClient`.
///
/// Every call made through `protocolClient` carries `X-Tansu-Tenant` and, once signed in,
/// `Authorization: Bearer <access token>`. `authorized(_:)` retries a call once after
/// TenantAuth.Refresh when the server returns UNAUTHENTICATED.
public final class TansuClient: Sendable {
    /// Header that names the tenant of a call.
    public static let tenantHeader = "x-tansu-tenant"

    /// Tenant id sent in the header and in the `tenant` field of TenantAuth requests.
    public let tenant: String
    /// Protocol client that every generated client of this tenant can share.
    public let protocolClient: ProtocolClient
    /// Generated TenantAuth client.
    public let auth: Tansu_Identity_V1_TenantAuthClient

    private let session: Session

    /// Creates a client for `tenant` on the server at `baseURL`, such as `http://127.0.0.1:8080`.
    public init(baseURL: String, tenant: String, transport: TansuTransport = .connectJSON) {
        let session = Session()
        self.session = session
        self.tenant = tenant

        let headers = InterceptorFactory { _ in SessionHeaders(tenant: tenant, session: session) }
        let httpClient: HTTPClientInterface
        let networkProtocol: NetworkProtocol
        let codec: Codec
        switch transport {
        case .connectJSON:
            (httpClient, networkProtocol, codec) = (URLSessionHTTPClient(), .connect, JSONCodec())
        case .connectProto:
            (httpClient, networkProtocol, codec) = (URLSessionHTTPClient(), .connect, ProtoCodec())
        case .grpc:
            let url = URL(string: baseURL)!
            let client = NIOHTTPClient(host: "\(url.scheme ?? "http")://\(url.host ?? "127.0.0.1")", port: url.port)
            (httpClient, networkProtocol, codec) = (client, .grpc, ProtoCodec())
        case .grpcWeb:
            (httpClient, networkProtocol, codec) = (URLSessionHTTPClient(), .grpcWeb, ProtoCodec())
        }
        self.protocolClient = ProtocolClient(
            httpClient: httpClient,
            config: ProtocolClientConfig(
                host: baseURL, networkProtocol: networkProtocol, codec: codec, interceptors: [headers]
            )
        )
        self.auth = Tansu_Identity_V1_TenantAuthClient(client: self.protocolClient)
    }

    /// Current session, or nil when signed out.
    public var tokens: TansuTokens? {
        get async { await self.session.tokens }
    }

    /// Replaces the session, for example with tokens saved from an earlier run.
    public func setTokens(_ tokens: TansuTokens?) async {
        await self.session.set(tokens)
    }

    /// Creates a user, signs it in and keeps its tokens. Throws the server's `ConnectError`.
    @discardableResult
    public func signUp(email: String, password: String, displayName: String = "") async throws
        -> Tansu_Identity_V1_SignUpResponse
    {
        var request = Tansu_Identity_V1_SignUpRequest()
        request.tenant = self.tenant
        request.email = email
        request.password = password
        request.displayName = displayName
        let response = try await self.auth.signUp(request: request).result.get()
        await self.session.set(TansuTokens(accessToken: response.accessToken, refreshToken: response.refreshToken))
        return response
    }

    /// Signs a user in and keeps its tokens. Throws the server's `ConnectError`.
    @discardableResult
    public func signIn(email: String, password: String) async throws -> Tansu_Identity_V1_SignInResponse {
        var request = Tansu_Identity_V1_SignInRequest()
        request.tenant = self.tenant
        request.email = email
        request.password = password
        let response = try await self.auth.signIn(request: request).result.get()
        await self.session.set(TansuTokens(accessToken: response.accessToken, refreshToken: response.refreshToken))
        return response
    }

    /// Exchanges the refresh token for a new pair and keeps it. An UNAUTHENTICATED response clears
    /// the session, because that refresh token cannot be used again.
    @discardableResult
    public func refresh() async throws -> Tansu_Identity_V1_RefreshResponse {
        guard let current = await self.session.tokens else { throw TansuClientError.notSignedIn }
        return try await self.refresh(from: current)
    }

    /// Ends the session on the server, which revokes its refresh-token family, and clears the
    /// tokens. They are cleared even when the server call fails.
    public func signOut() async throws {
        guard let current = await self.session.take() else { return }
        var request = Tansu_Identity_V1_SignOutRequest()
        request.tenant = self.tenant
        request.refreshToken = current.refreshToken
        _ = try await self.auth.signOut(request: request).result.get()
    }

    /// Returns the signed-in user, refreshing the access token once if the server rejects it.
    public func currentUser() async throws -> Tansu_Identity_V1_User {
        var request = Tansu_Identity_V1_GetCurrentUserRequest()
        request.tenant = self.tenant
        return try await self.authorized { await self.auth.getCurrentUser(request: request) }.user
    }

    /// Runs `call` and returns its message. On UNAUTHENTICATED with a refresh token held, it
    /// refreshes once and runs `call` again; a failed refresh or a second failure is thrown.
    public func authorized<Output>(
        _ call: @Sendable () async -> ResponseMessage<Output>
    ) async throws -> Output {
        let sentWith = await self.session.tokens
        let first = await call()
        guard let error = first.error, error.code == .unauthenticated, let sentWith else {
            return try first.result.get()
        }

        // Another call may have refreshed already; only refresh the pair this call was sent with.
        if await self.session.tokens == sentWith {
            try await self.refresh(from: sentWith)
        }
        return try await call().result.get()
    }

    @discardableResult
    private func refresh(from current: TansuTokens) async throws -> Tansu_Identity_V1_RefreshResponse {
        var request = Tansu_Identity_V1_RefreshRequest()
        request.tenant = self.tenant
        request.refreshToken = current.refreshToken
        let result = await self.auth.refresh(request: request).result
        switch result {
        case .success(let response):
            await self.session.set(TansuTokens(accessToken: response.accessToken, refreshToken: response.refreshToken))
            return response
        case .failure(let error):
            if error.code == .unauthenticated {
                await self.session.clear(ifEqualTo: current)
            }
            throw error
        }
    }
}

/// Token storage shared by the client and its interceptor.
private actor Session {
    var tokens: TansuTokens?

    func set(_ tokens: TansuTokens?) {
        self.tokens = tokens
    }

    func take() -> TansuTokens? {
        defer { self.tokens = nil }
        return self.tokens
    }

    func clear(ifEqualTo expected: TansuTokens) {
        if self.tokens == expected {
            self.tokens = nil
        }
    }
}

/// Adds the tenant and bearer headers to every unary call and stream.
private final class SessionHeaders: UnaryInterceptor, StreamInterceptor {
    private let tenant: String
    private let session: Session

    init(tenant: String, session: Session) {
        self.tenant = tenant
        self.session = session
    }

    @Sendable
    func handleUnaryRawRequest(
        _ request: HTTPRequest<Data?>,
        proceed: @escaping @Sendable (Result<HTTPRequest<Data?>, ConnectError>) -> Void
    ) {
        Task { proceed(.success(await self.withSession(request))) }
    }

    @Sendable
    func handleStreamStart(
        _ request: HTTPRequest<Data?>,
        proceed: @escaping @Sendable (Result<HTTPRequest<Data?>, ConnectError>) -> Void
    ) {
        Task { proceed(.success(await self.withSession(request))) }
    }

    private func withSession(_ request: HTTPRequest<Data?>) async -> HTTPRequest<Data?> {
        var headers = request.headers
        if headers[TansuClient.tenantHeader] == nil {
            headers[TansuClient.tenantHeader] = [self.tenant]
        }
        if headers["authorization"] == nil, let access = await self.session.tokens?.accessToken {
            headers["authorization"] = ["Bearer \(access)"]
        }
        return HTTPRequest(
            url: request.url, headers: headers, message: request.message, method: request.method,
            trailers: request.trailers, idempotencyLevel: request.idempotencyLevel
        )
    }
}

extension ConnectError {
    /// Reason of the `google.rpc.ErrorInfo` detail that the Tansu server attaches to its errors,
    /// or nil when the error carries none.
    public var reason: String? {
        let details: [Google_Rpc_ErrorInfo] = self.unpackedDetails()
        return details.first?.reason
    }
}
