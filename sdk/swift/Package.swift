// swift-tools-version:5.10
// NOTE: written without a Swift toolchain and never resolved or built; see README.md.
import PackageDescription

let package = Package(
    name: "Tansu",
    platforms: [
        .macOS(.v12),
        .iOS(.v15),
    ],
    products: [
        .library(name: "Tansu", targets: ["Tansu"]),
    ],
    dependencies: [
        .package(url: "https://github.com/connectrpc/connect-swift.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.28.0"),
    ],
    targets: [
        .target(
            name: "Tansu",
            dependencies: [
                .product(name: "Connect", package: "connect-swift"),
                // ConnectNIO adds the gRPC protocol (HTTP/2 trailers) on top of SwiftNIO.
                .product(name: "ConnectNIO", package: "connect-swift"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .testTarget(
            name: "TansuTests",
            dependencies: ["Tansu"]
        ),
    ]
)
