//! The pipeline drives extension hooks (the seam the Wasm filters use):
//! local answers, cluster choice, re-routing, failures, body wrapping and
//! the end-of-exchange summary.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::Request;
use http::request::Parts;
use http_body::{Body, Frame};
use tokio::sync::mpsc;
use weir_proxy::body::{self, BoxError, ProxyBody};
use weir_proxy::phases::{
    ExchangeCtx, ExchangeHooks, ExchangeSummary, Flow, HookError, HooksFactory,
};
use weir_proxy::routing::RouteId;
use weir_tests::{client, proxy, server};

const CONFIG: &str = r#"
clusters:
  - { name: a, endpoints: ["{{a}}"] }
  - { name: b, endpoints: ["{{b}}"] }
virtual_hosts:
  - name: all
    domains: ["*"]
    routes:
      - { name: respond, match: { path: /respond }, forward: { cluster: a } }    # 0
      - { name: override, match: { path: /override }, forward: { cluster: a } }  # 1
      - { name: reroute, match: { path: /reroute }, forward: { cluster: a } }    # 2
      - name: target                                                             # 3
        match: { path: /rerouted }
        direct_response: { status: 200, body: rerouted }
      - { name: fail, match: { path: /fail }, forward: { cluster: a } }          # 4
      - { name: limit, match: { path: /limit }, forward: { cluster: a } }        # 5
      - { name: plain, match: { prefix: / }, forward: { cluster: a } }           # 6
"#;

/// A hooks factory whose behaviour depends on the route, and which reports
/// every finished exchange on a channel.
struct TestHooks {
    done: mpsc::UnboundedSender<ExchangeSummary>,
}

struct Hooks {
    route: u32,
    done: mpsc::UnboundedSender<ExchangeSummary>,
}

impl HooksFactory for TestHooks {
    fn start(&self, route: RouteId) -> Option<Box<dyn ExchangeHooks>> {
        Some(Box::new(Hooks {
            route: route.0,
            done: self.done.clone(),
        }))
    }
}

impl ExchangeHooks for Hooks {
    fn request_headers<'a>(
        &'a mut self,
        head: &'a mut Parts,
        ctx: &'a mut ExchangeCtx,
    ) -> BoxFuture<'a, Result<Flow, HookError>> {
        Box::pin(async move {
            head.headers.insert("x-hooked", "yes".parse().unwrap());
            match self.route {
                0 => {
                    let response = http::Response::builder()
                        .status(403)
                        .body(Bytes::from_static(b"denied by hook"))
                        .unwrap();
                    Ok(Flow::Respond(response))
                }
                1 => {
                    ctx.cluster = Some("b".into());
                    ctx.cluster_overridden = true;
                    Ok(Flow::Continue)
                }
                2 => {
                    head.uri = "/rerouted".parse().unwrap();
                    ctx.reroute = true;
                    Ok(Flow::Continue)
                }
                4 => Err(HookError::FilterFailed {
                    filter: "authz".into(),
                    reason: "trap: unreachable".into(),
                }),
                _ => Ok(Flow::Continue),
            }
        })
    }

    fn wraps_request_body(&self) -> bool {
        self.route == 5
    }

    // Called only for the route `wraps_request_body` names.
    fn request_body(&mut self, body: ProxyBody) -> ProxyBody {
        body::boxed(LimitedBody {
            inner: body,
            seen: 0,
            limit: 10,
        })
    }

    fn response_headers<'a>(
        &'a mut self,
        head: &'a mut http::response::Parts,
        _ctx: &'a mut ExchangeCtx,
    ) -> BoxFuture<'a, Result<Flow, HookError>> {
        Box::pin(async move {
            head.headers
                .insert("x-response-hook", "seen".parse().unwrap());
            Ok(Flow::Continue)
        })
    }

    fn done(self: Box<Self>, _ctx: ExchangeCtx, summary: ExchangeSummary) {
        let _ = self.done.send(summary);
    }
}

/// A body that fails with `BodyTooLarge` past `limit` bytes, like a filter
/// that buffers.
struct LimitedBody {
    inner: ProxyBody,
    seen: u64,
    limit: u64,
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.seen += data.len() as u64;
            if self.seen > self.limit {
                let err = HookError::BodyTooLarge {
                    filter: "scan".into(),
                    limit: self.limit,
                };
                return Poll::Ready(Some(Err(Box::new(err))));
            }
        }
        polled
    }
}

async fn setup() -> (
    server::Listening,
    server::Listening,
    proxy::RunningProxy,
    mpsc::UnboundedReceiver<ExchangeSummary>,
) {
    let echo = |name: &'static str| server::http1().named(name).echoing().run();
    let (a, b) = (echo("a").await, echo("b").await);
    let (done, summaries) = mpsc::unbounded_channel();
    let proxy = proxy::new()
        .upstream("a", &a)
        .upstream("b", &b)
        .hooks(Arc::new(TestHooks { done }))
        .config(CONFIG)
        .run()
        .await;
    (a, b, proxy, summaries)
}

#[tokio::test]
async fn hooks_answer_choose_clusters_and_reroute() {
    let (a, b, proxy, _summaries) = setup().await;
    let client = client::http1();

    let denied = client.get(&proxy.url("/respond")).await;
    assert_eq!(
        (denied.status.as_u16(), denied.text().as_str()),
        (403, "denied by hook")
    );
    assert_eq!(
        denied.header("x-response-hook"),
        Some("seen"),
        "local answers pass response hooks"
    );

    let overridden = client.get(&proxy.url("/override")).await;
    assert_eq!(overridden.header("x-upstream"), Some("b"));
    assert_eq!(overridden.json()["headers"]["x-hooked"][0], "yes");

    let rerouted = client.get(&proxy.url("/reroute")).await;
    assert_eq!(rerouted.text(), "rerouted");

    let plain = client.get(&proxy.url("/other")).await;
    assert_eq!(plain.header("x-upstream"), Some("a"));
    assert_eq!(plain.header("x-response-hook"), Some("seen"));
    assert_eq!(a.requests(), 1);
    assert_eq!(b.requests(), 1);
}

#[tokio::test]
async fn failing_hooks_get_their_status() {
    let (a, _b, proxy, _summaries) = setup().await;
    let client = client::http1();
    let failed = client.get(&proxy.url("/fail")).await;
    assert_eq!(failed.status, 503);
    assert_eq!(failed.text(), "filter \"authz\" failed\n");
    assert!(!failed.text().contains("unreachable"), "no internals leak");
    assert_eq!(a.requests(), 0, "a failed filter stops the request");

    let request = Request::post(proxy.url("/limit"))
        .body(body::full(vec![b'x'; 4096]))
        .unwrap();
    let too_large = client.send(request).await;
    assert_eq!(too_large.status, 413);
    assert_eq!(
        too_large.text(),
        "request body too large for filter \"scan\"\n"
    );
}

#[tokio::test]
async fn done_reports_the_exchange() {
    let (_a, _b, proxy, mut summaries) = setup().await;
    let client = client::http1();
    let request = Request::post(proxy.url("/count"))
        .body(body::full(vec![b'x'; 1000]))
        .unwrap();
    let response = client.send(request).await;
    assert_eq!(response.status, 200);
    let summary = summaries.recv().await.expect("done ran");
    assert_eq!(summary.status, 200);
    assert_eq!(summary.request_bytes, 1000);
    assert_eq!(summary.response_bytes, response.body.len() as u64);
    assert_eq!(summary.upstream_cluster.as_deref(), Some("a"));
    assert!(!summary.local_response);

    client.get(&proxy.url("/respond")).await;
    let summary = summaries.recv().await.expect("done ran");
    assert_eq!(summary.status, 403);
    assert!(summary.local_response);
    assert_eq!(summary.upstream_cluster, None);
}
