package dev.tansu.sdk

/**
 * A signed-in session: the bearer [accessToken] sent on every call and the [refreshToken] that
 * TenantAuth.Refresh exchanges for the next pair. Both change together, so they live in one value.
 */
data class Tokens(val accessToken: String, val refreshToken: String) {
    // Tokens are credentials; keep them out of logs and exception messages.
    override fun toString(): String = "Tokens(accessToken=***, refreshToken=***)"
}
