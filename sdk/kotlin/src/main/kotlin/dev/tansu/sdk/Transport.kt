package dev.tansu.sdk

/** Wire protocol and encoding a [TansuClient] speaks. The Tansu server accepts all four on one port. */
enum class Transport {
    /** Connect protocol with JSON bodies; works over HTTP/1.1 and HTTP/2. */
    CONNECT_JSON,

    /** Connect protocol with binary protobuf bodies. */
    CONNECT_PROTO,

    /** gRPC with protobuf. Needs HTTP/2, so over `http://` the client uses h2c with prior knowledge. */
    GRPC,

    /** gRPC-Web with protobuf; works over HTTP/1.1 and HTTP/2. */
    GRPC_WEB,
}
