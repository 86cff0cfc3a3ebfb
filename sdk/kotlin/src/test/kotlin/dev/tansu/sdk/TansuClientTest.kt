package dev.tansu.sdk

import com.connectrpc.Code
import com.connectrpc.ConnectException
import com.google.protobuf.Message
import com.google.protobuf.util.JsonFormat
import com.sun.net.httpserver.HttpExchange
import com.sun.net.httpserver.HttpServer
import java.net.InetSocketAddress
import java.util.concurrent.CopyOnWriteArrayList
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import tansu.identity.v1.Auth.GetCurrentUserResponse
import tansu.identity.v1.Auth.RefreshRequest
import tansu.identity.v1.Auth.RefreshResponse
import tansu.identity.v1.UserOuterClass.User

/**
 * Header and refresh behaviour of [TansuClient], checked over a real socket against a small
 * Connect (unary, JSON) endpoint for GetCurrentUser and Refresh. It runs in `mvn package` with no
 * Tansu server; the same behaviour is checked against the real server by [TenantAuthIT].
 */
class TansuClientTest {
    /** One request as the endpoint saw it. */
    private data class Seen(val path: String, val tenant: String?, val authorization: String?)

    private val seen = CopyOnWriteArrayList<Seen>()

    /** Access token GetCurrentUser accepts; anything else is UNAUTHENTICATED. */
    @Volatile
    private var validAccess = "access-1"

    /** Refresh token Refresh accepts; it returns access-2 / refresh-2. */
    @Volatile
    private var validRefresh = "refresh-1"

    private val server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0).apply {
        createContext("/tansu.identity.v1.TenantAuth/") { exchange -> handle(exchange) }
        start()
    }

    private val baseUrl = "http://127.0.0.1:${server.address.port}"

    @AfterEach
    fun stop() {
        server.stop(0)
    }

    @Test
    fun sendsTenantAndBearerHeaders() = runBlocking {
        val tansu = TansuClient(baseUrl, "acme")
        tansu.setTokens(Tokens("access-1", "refresh-1"))

        val user = tansu.currentUser()

        assertEquals("ada@example.com", user.email)
        assertEquals(listOf(Seen("GetCurrentUser", "acme", "Bearer access-1")), seen)
    }

    @Test
    fun unauthenticatedCallRefreshesOnceAndRetries() = runBlocking {
        val tansu = TansuClient(baseUrl, "acme")
        tansu.setTokens(Tokens("expired", "refresh-1"))
        validAccess = "access-2"

        val user = tansu.currentUser()

        assertEquals("ada@example.com", user.email)
        assertEquals(Tokens("access-2", "refresh-2"), tansu.currentTokens)
        assertEquals(
            listOf(
                Seen("GetCurrentUser", "acme", "Bearer expired"),
                Seen("Refresh", "acme", "Bearer expired"),
                Seen("GetCurrentUser", "acme", "Bearer access-2"),
            ),
            seen,
        )
    }

    @Test
    fun rejectedRefreshClearsSession() = runBlocking {
        val tansu = TansuClient(baseUrl, "acme")
        tansu.setTokens(Tokens("expired", "revoked"))

        val error = assertThrows<ConnectException> { runBlocking { tansu.currentUser() } }

        assertEquals(Code.UNAUTHENTICATED, error.code)
        assertNull(tansu.currentTokens)
        assertEquals(listOf("GetCurrentUser", "Refresh"), seen.map { it.path })
    }

    @Test
    fun signedOutCallDoesNotRefresh() = runBlocking {
        val tansu = TansuClient(baseUrl, "acme")

        val error = assertThrows<ConnectException> { runBlocking { tansu.currentUser() } }

        assertEquals(Code.UNAUTHENTICATED, error.code)
        assertEquals(listOf(Seen("GetCurrentUser", "acme", null)), seen)
    }

    private fun handle(exchange: HttpExchange) {
        val method = exchange.requestURI.path.substringAfterLast('/')
        val authorization = exchange.requestHeaders.getFirst("Authorization")
        seen += Seen(method, exchange.requestHeaders.getFirst("X-Tansu-Tenant"), authorization)
        val body = exchange.requestBody.readBytes().decodeToString()

        when (method) {
            "GetCurrentUser" ->
                if (authorization == "Bearer $validAccess") {
                    val user = User.newBuilder().setId("u-1").setEmail("ada@example.com")
                    reply(exchange, GetCurrentUserResponse.newBuilder().setUser(user).build())
                } else {
                    fail(exchange, "access token is invalid or expired")
                }
            "Refresh" -> {
                val request = RefreshRequest.newBuilder().also { JsonFormat.parser().merge(body, it) }.build()
                if (request.refreshToken == validRefresh) {
                    val tokens = RefreshResponse.newBuilder()
                        .setAccessToken("access-2")
                        .setRefreshToken("refresh-2")
                        .setExpiresIn(900)
                        .setTokenType("Bearer")
                    reply(exchange, tokens.build())
                } else {
                    fail(exchange, "refresh token is invalid or revoked")
                }
            }
            else -> send(exchange, 404, """{"code":"unimplemented","message":"no method $method"}""")
        }
    }

    private fun reply(exchange: HttpExchange, message: Message) =
        send(exchange, 200, JsonFormat.printer().print(message))

    // Connect protocol unary error: HTTP 401 with a JSON error body.
    private fun fail(exchange: HttpExchange, message: String) =
        send(exchange, 401, """{"code":"unauthenticated","message":"$message"}""")

    private fun send(exchange: HttpExchange, status: Int, json: String) {
        val bytes = json.encodeToByteArray()
        exchange.responseHeaders.add("Content-Type", "application/json")
        exchange.sendResponseHeaders(status, bytes.size.toLong())
        exchange.responseBody.use { it.write(bytes) }
    }
}
