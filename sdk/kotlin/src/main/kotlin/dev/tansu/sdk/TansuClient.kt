package dev.tansu.sdk

import com.connectrpc.Code
import com.connectrpc.ConnectException
import com.connectrpc.Interceptor
import com.connectrpc.ProtocolClientConfig
import com.connectrpc.ResponseMessage
import com.connectrpc.SerializationStrategy
import com.connectrpc.StreamFunction
import com.connectrpc.UnaryFunction
import com.connectrpc.extensions.GoogleJavaJSONStrategy
import com.connectrpc.extensions.GoogleJavaProtobufStrategy
import com.connectrpc.getOrThrow
import com.connectrpc.http.clone
import com.connectrpc.impl.ProtocolClient
import com.connectrpc.okhttp.ConnectOkHttpClient
import com.connectrpc.protocols.NetworkProtocol
import com.google.rpc.ErrorInfo
import java.util.concurrent.atomic.AtomicReference
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import okhttp3.OkHttpClient
import okhttp3.Protocol
import tansu.identity.v1.Auth.GetCurrentUserRequest
import tansu.identity.v1.Auth.RefreshRequest
import tansu.identity.v1.Auth.RefreshResponse
import tansu.identity.v1.Auth.SignInRequest
import tansu.identity.v1.Auth.SignInResponse
import tansu.identity.v1.Auth.SignOutRequest
import tansu.identity.v1.Auth.SignUpRequest
import tansu.identity.v1.Auth.SignUpResponse
import tansu.identity.v1.TenantAuthClient
import tansu.identity.v1.UserOuterClass.User

/**
 * Client for one tenant of a Tansu server.
 *
 * Every call made through [protocolClient] (and so through [auth] or any other generated client
 * built on it, such as `TenantsClient(tansu.protocolClient)`) carries the `X-Tansu-Tenant` header
 * and, once signed in, `Authorization: Bearer <access token>`. [authorized] retries a call once
 * after TenantAuth.Refresh when the server returns UNAUTHENTICATED.
 *
 * @param baseUrl server root such as `http://127.0.0.1:8080`, without a trailing path.
 * @param tenant tenant id sent in `X-Tansu-Tenant` and in the `tenant` field of TenantAuth requests.
 * @param transport wire protocol; see [Transport].
 * @param httpClient OkHttp client to build on, for timeouts or TLS settings. For [Transport.GRPC]
 *   over `http://` its protocols are replaced by h2c prior knowledge.
 */
class TansuClient @JvmOverloads constructor(
    baseUrl: String,
    val tenant: String,
    val transport: Transport = Transport.CONNECT_JSON,
    httpClient: OkHttpClient = OkHttpClient(),
) {
    private val tokens = AtomicReference<Tokens?>(null)
    private val refreshLock = Mutex()

    /** Protocol client that every generated Connect-Kotlin client of this tenant can share. */
    val protocolClient: ProtocolClient

    /** Generated TenantAuth client; requests still need their `tenant` field or the header set here. */
    val auth: TenantAuthClient

    init {
        require(baseUrl.startsWith("http://") || baseUrl.startsWith("https://")) {
            "baseUrl must start with http:// or https://, got '$baseUrl'"
        }
        require(tenant.isNotBlank()) { "tenant must not be blank" }

        val okHttp = if (transport == Transport.GRPC && baseUrl.startsWith("http://")) {
            // gRPC needs HTTP/2. Without TLS there is no ALPN to negotiate it, so OkHttp is
            // configured to speak HTTP/2 from the first byte (h2c with prior knowledge).
            httpClient.newBuilder().protocols(listOf(Protocol.H2_PRIOR_KNOWLEDGE)).build()
        } else {
            httpClient
        }
        protocolClient = ProtocolClient(
            httpClient = ConnectOkHttpClient(okHttp),
            config = ProtocolClientConfig(
                host = baseUrl.trimEnd('/'),
                serializationStrategy = serializationFor(transport),
                networkProtocol = networkProtocolFor(transport),
                interceptors = listOf({ _ -> SessionHeaders() }),
            ),
        )
        auth = TenantAuthClient(protocolClient)
    }

    /** Current session, or null when signed out. */
    val currentTokens: Tokens? get() = tokens.get()

    /** Replaces the session, for example with tokens saved from an earlier run; null signs out locally. */
    fun setTokens(value: Tokens?) {
        tokens.set(value)
    }

    /** Creates a user, signs it in and keeps its tokens. Throws [ConnectException] on failure. */
    suspend fun signUp(email: String, password: String, displayName: String = ""): SignUpResponse {
        val request = SignUpRequest.newBuilder()
            .setTenant(tenant)
            .setEmail(email)
            .setPassword(password)
            .setDisplayName(displayName)
            .build()
        val response = auth.signUp(request).getOrThrow()
        tokens.set(Tokens(response.accessToken, response.refreshToken))
        return response
    }

    /** Signs a user in and keeps its tokens. Throws [ConnectException] on failure. */
    suspend fun signIn(email: String, password: String): SignInResponse {
        val request = SignInRequest.newBuilder()
            .setTenant(tenant)
            .setEmail(email)
            .setPassword(password)
            .build()
        val response = auth.signIn(request).getOrThrow()
        tokens.set(Tokens(response.accessToken, response.refreshToken))
        return response
    }

    /**
     * Exchanges the refresh token for a new pair and keeps it. Throws [IllegalStateException] when
     * signed out and [ConnectException] when the server rejects the token. A rejected
     * (UNAUTHENTICATED) refresh token cannot be used again, so the session is then cleared.
     */
    suspend fun refresh(): RefreshResponse = refreshLock.withLock { refreshLocked() }

    /**
     * Ends the session on the server, which revokes its refresh-token family, and clears the
     * tokens. They are cleared even when the server call fails.
     */
    suspend fun signOut() {
        val current = tokens.getAndSet(null) ?: return
        val request = SignOutRequest.newBuilder()
            .setTenant(tenant)
            .setRefreshToken(current.refreshToken)
            .build()
        auth.signOut(request).getOrThrow()
    }

    /** Returns the signed-in user (TenantAuth.GetCurrentUser), refreshing the access token if it expired. */
    suspend fun currentUser(): User = authorized {
        auth.getCurrentUser(GetCurrentUserRequest.newBuilder().setTenant(tenant).build())
    }.user

    /**
     * Runs [call] and returns its message. When it fails with UNAUTHENTICATED and a refresh token
     * is held, refreshes once and runs [call] again. A failed refresh or a second failure is thrown
     * as [ConnectException]. Concurrent callers that hit an expired token share one refresh.
     */
    suspend fun <T> authorized(call: suspend () -> ResponseMessage<T>): T {
        val sentWith = tokens.get()
        val first = call()
        if (first !is ResponseMessage.Failure || first.cause.code != Code.UNAUTHENTICATED) {
            return first.getOrThrow()
        }
        if (sentWith == null) {
            return first.getOrThrow()
        }

        refreshLock.withLock {
            // Another caller may have refreshed while this one waited; reuse its tokens.
            if (tokens.get() == sentWith) {
                refreshLocked()
            }
        }
        return call().getOrThrow()
    }

    /** Blocking form of [authorized] for Java callers and scripts; blocks the calling thread. */
    fun <T> authorizedBlocking(call: suspend () -> ResponseMessage<T>): T = runBlocking { authorized(call) }

    private suspend fun refreshLocked(): RefreshResponse {
        val current = tokens.get() ?: throw IllegalStateException("not signed in: call signIn or signUp first")
        val request = RefreshRequest.newBuilder()
            .setTenant(tenant)
            .setRefreshToken(current.refreshToken)
            .build()
        val result = auth.refresh(request)
        if (result is ResponseMessage.Failure && result.cause.code == Code.UNAUTHENTICATED) {
            tokens.compareAndSet(current, null)
        }
        val response = result.getOrThrow()
        tokens.set(Tokens(response.accessToken, response.refreshToken))
        return response
    }

    /** Adds the tenant and bearer headers to every unary and streaming request. */
    private inner class SessionHeaders : Interceptor {
        override fun unaryFunction() = UnaryFunction(
            requestFunction = { request -> request.clone(headers = withSession(request.headers)) },
            responseFunction = { response -> response },
        )

        override fun streamFunction() = StreamFunction(
            requestFunction = { request -> request.clone(headers = withSession(request.headers)) },
        )

        private fun withSession(headers: Map<String, List<String>>): Map<String, List<String>> {
            val result = headers.toMutableMap()
            // A header the caller set on one call wins over the session's.
            if (result.keys.none { it.equals(TENANT_HEADER, ignoreCase = true) }) {
                result[TENANT_HEADER] = listOf(tenant)
            }
            val access = tokens.get()?.accessToken
            if (access != null && result.keys.none { it.equals(AUTHORIZATION_HEADER, ignoreCase = true) }) {
                result[AUTHORIZATION_HEADER] = listOf("Bearer $access")
            }
            return result
        }
    }

    companion object {
        /** Header that names the tenant of a call. */
        const val TENANT_HEADER = "x-tansu-tenant"

        private const val AUTHORIZATION_HEADER = "authorization"

        private fun serializationFor(transport: Transport): SerializationStrategy = when (transport) {
            Transport.CONNECT_JSON -> GoogleJavaJSONStrategy()
            Transport.CONNECT_PROTO, Transport.GRPC, Transport.GRPC_WEB -> GoogleJavaProtobufStrategy()
        }

        private fun networkProtocolFor(transport: Transport): NetworkProtocol = when (transport) {
            Transport.CONNECT_JSON, Transport.CONNECT_PROTO -> NetworkProtocol.CONNECT
            Transport.GRPC -> NetworkProtocol.GRPC
            Transport.GRPC_WEB -> NetworkProtocol.GRPC_WEB
        }
    }
}

/**
 * Reason of the `google.rpc.ErrorInfo` detail that the Tansu server attaches to its errors,
 * such as `EMAIL_ALREADY_EXISTS`, or null when the error carries none.
 */
val ConnectException.reason: String?
    get() = unpackedDetails(ErrorInfo::class).firstOrNull()?.reason
