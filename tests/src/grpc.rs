//! A small gRPC service for proxy tests, written by hand (no code generation):
//! `weir.test.Echo/Unary` and `weir.test.Echo/Stream`, served by tonic inside
//! a [`crate::server`] HTTP/2 server and called with tonic's client.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Request;
use http::uri::PathAndQuery;
use hyper::body::Incoming;
use tonic::codegen::Service;
use tonic::{Status, Streaming};
use tonic_prost::ProstCodec;
use weir_proxy::body::{self, ProxyBody};

/// The unary method's path.
pub const UNARY: &str = "/weir.test.Echo/Unary";
/// The server-streaming method's path.
pub const STREAM: &str = "/weir.test.Echo/Stream";

/// The request message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoRequest {
    /// Echoed back.
    #[prost(string, tag = "1")]
    pub message: String,
    /// For `Stream`: how many replies.
    #[prost(uint32, tag = "2")]
    pub count: u32,
    /// For `Unary`: answer with this gRPC status code instead (0: OK).
    #[prost(int32, tag = "3")]
    pub fail_with: i32,
}

/// The reply message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoReply {
    /// The request's message (with the reply's index for `Stream`).
    #[prost(string, tag = "1")]
    pub message: String,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

struct UnaryEcho;

impl Service<tonic::Request<EchoRequest>> for UnaryEcho {
    type Response = tonic::Response<EchoReply>;
    type Error = Status;
    type Future = BoxFuture<Result<Self::Response, Status>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::Request<EchoRequest>) -> Self::Future {
        Box::pin(async move {
            let request = request.into_inner();
            if request.fail_with != 0 {
                let code = tonic::Code::from_i32(request.fail_with);
                return Err(Status::new(
                    code,
                    format!("failing as asked: {}", request.message),
                ));
            }
            let mut response = tonic::Response::new(EchoReply {
                message: request.message,
            });
            response
                .metadata_mut()
                .insert("x-echo-server", "weir-tests".parse().expect("ascii"));
            Ok(response)
        })
    }
}

struct StreamEcho;

type ReplyStream = futures_util::stream::Iter<std::vec::IntoIter<Result<EchoReply, Status>>>;

impl Service<tonic::Request<EchoRequest>> for StreamEcho {
    type Response = tonic::Response<ReplyStream>;
    type Error = Status;
    type Future = BoxFuture<Result<Self::Response, Status>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::Request<EchoRequest>) -> Self::Future {
        Box::pin(async move {
            let request = request.into_inner();
            let replies: Vec<Result<EchoReply, Status>> = (0..request.count)
                .map(|i| {
                    Ok(EchoReply {
                        message: format!("{} #{i}", request.message),
                    })
                })
                .collect();
            Ok(tonic::Response::new(futures_util::stream::iter(replies)))
        })
    }
}

/// Serve one gRPC request (use as the fallback of an HTTP/2 test server).
pub async fn serve(request: Request<Incoming>) -> http::Response<ProxyBody> {
    let codec = ProstCodec::<EchoReply, EchoRequest>::default();
    let mut grpc = tonic::server::Grpc::new(codec);
    let response = match request.uri().path() {
        UNARY => grpc.unary(UnaryEcho, request).await,
        STREAM => grpc.server_streaming(StreamEcho, request).await,
        _ => Status::unimplemented("no such method").into_http(),
    };
    response.map(body::boxed)
}

/// A tonic client over an h2c channel to `addr`.
pub struct EchoClient(tonic::client::Grpc<tonic::transport::Channel>);

impl EchoClient {
    /// Connect to `addr` (the proxy or the server itself).
    pub async fn connect(addr: std::net::SocketAddr) -> Self {
        let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .expect("valid uri")
            .connect()
            .await
            .expect("connect the gRPC channel");
        Self(tonic::client::Grpc::new(channel))
    }

    /// Call `Unary`.
    pub async fn unary(
        &mut self,
        request: EchoRequest,
    ) -> Result<tonic::Response<EchoReply>, Status> {
        self.0
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let codec = ProstCodec::<EchoRequest, EchoReply>::default();
        self.0
            .unary(
                tonic::Request::new(request),
                PathAndQuery::from_static(UNARY),
                codec,
            )
            .await
    }

    /// Call `Stream`.
    pub async fn stream(
        &mut self,
        request: EchoRequest,
    ) -> Result<tonic::Response<Streaming<EchoReply>>, Status> {
        self.0
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let codec = ProstCodec::<EchoRequest, EchoReply>::default();
        let path = PathAndQuery::from_static(STREAM);
        self.0
            .server_streaming(tonic::Request::new(request), path, codec)
            .await
    }
}
