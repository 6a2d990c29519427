//! The `hmac` auth mode: an RFC 9421 signature made with a key's signing
//! secret names the key, whose scopes, rate limit and credits then apply as
//! for an API key; and `DigestChecked`, which holds a request body to its
//! signed `Content-Digest` while it streams to the upstream.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::http::HeaderMap;
use hyper::body::{Body as HttpBody, Bytes, Frame, SizeHint};
use keygate_core::VerifyCode;
use keygate_core::httpsig::{
    BodyDigest, BodyStatus, HmacError, HmacIdentity, RequestView, SigCode,
};
use keygate_http::signature::HeaderMapLookup;

use super::config::Route;
use super::deps::GatewayDeps;
use super::identity::Identity;
use super::refusal::{Reason, Refusal};
use super::request::AuthInput;
use keygate_http::ApiError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<'a> AuthInput<'a> {
    /// The request as its signature covers it: as the client addressed it,
    /// percent-encoding untouched. A request that names no host cannot
    /// have been signed for this one.
    pub fn signed_view(
        &self,
        headers: &'a HeaderMapLookup<'a>,
    ) -> Result<RequestView<'a>, HmacError> {
        let authority = self.authority.ok_or_else(|| {
            HmacError::Refused(keygate_core::httpsig::SignatureRefusal::new(
                SigCode::SignatureMalformed,
                "the request names no host",
            ))
        })?;
        Ok(RequestView {
            method: self.method,
            scheme: self.scheme,
            authority,
            path: self.path,
            query: self.query,
            headers,
        })
    }
}

/// Verifies the request's signature, then the route's scopes against the
/// key's, then the key's own rate limit and credits. With a body to come,
/// also answers the digest the body must be fed through.
pub async fn with_signature(
    deps: &GatewayDeps,
    route: &Route,
    req: &AuthInput<'_>,
) -> Result<(Identity, Option<BodyDigest>), Refusal> {
    let headers = HeaderMapLookup(req.headers);
    let view = req.signed_view(&headers).map_err(refused)?;
    let body = if req.has_body {
        BodyStatus::Streaming
    } else {
        BodyStatus::Empty
    };
    let cover_content_headers = route
        .hmac_cover_content_headers
        .unwrap_or(deps.hmac.policy().cover_content_headers);
    let signed = deps
        .hmac
        .verify_request_covering(&view, body, cover_content_headers)
        .await
        .map_err(refused)?;
    let key_id = signed.key_id.clone();
    let (rate_limit, remaining) = (signed.rate_limit, signed.remaining);
    let (id, digest) = identity(signed);
    if !id.has_scopes(&route.scopes) {
        return Err(Refusal::insufficient_scope());
    }
    charge(deps, &key_id, rate_limit, remaining).await?;
    Ok((id, digest))
}

/// The key's own rate limit and credits, charged once the signature and
/// the scopes passed.
async fn charge(
    deps: &GatewayDeps,
    key_id: &keygate_core::KeyId,
    rate_limit: Option<keygate_core::model::RateLimitSpec>,
    remaining: Option<i64>,
) -> Result<(), Refusal> {
    let charged = deps
        .keys
        .charge(key_id, rate_limit, remaining)
        .await
        .map_err(Refusal::unavailable)?;
    match charged.code {
        VerifyCode::Valid => Ok(()),
        VerifyCode::RateLimited => Err(Refusal::key_over_limit(charged.ratelimit.as_ref())),
        // As for an API key whose credits are gone: a 401, since the
        // credential no longer admits anything.
        _ => {
            let mut e = ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "usage_exceeded",
                "the key's usage credits are used up",
            );
            e.challenge = mismatch_error().challenge;
            Err(Refusal::new(e, Reason::Key(VerifyCode::UsageExceeded)))
        }
    }
}

fn identity(mut signed: HmacIdentity) -> (Identity, Option<BodyDigest>) {
    let digest = signed.pending_digest.take();
    let mut scopes = signed.scopes;
    scopes.sort();
    let id = Identity {
        kind: Some(keygate_core::jwt::TokenKind::Client),
        key_id: Some(signed.key_id.clone()),
        client_id: Some(keygate_core::jwt::ClientRef::Key(signed.key_id)),
        key_owner: Some(signed.owner),
        subject: None,
        tenant: signed.tenant,
        scopes,
        roles: Vec::new(),
    };
    (id, digest)
}

/// 401 with the refusal's own code (and a `Signature` challenge), counted
/// under that code; storage trouble is a 503, a key over its nonce quota
/// a 429.
fn refused(e: HmacError) -> Refusal {
    let reason = match &e {
        HmacError::Refused(r) => Reason::Signature(r.code),
        HmacError::Unavailable(_) => Reason::StorageUnavailable,
        HmacError::OverQuota { .. } => Reason::SignatureNonceQuota,
    };
    Refusal::new(ApiError::from(e), reason)
}

/// The body-side error: the streamed body did not match its digest.
#[derive(Debug)]
pub struct DigestMismatch;

impl std::fmt::Display for DigestMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the body does not match its Content-Digest")
    }
}

impl std::error::Error for DigestMismatch {}

/// The 401 a client gets when its body did not match.
pub fn mismatch_error() -> ApiError {
    ApiError::from(HmacError::Refused(
        keygate_core::httpsig::SignatureRefusal::new(
            SigCode::ContentDigestMismatch,
            "the body does not match its `Content-Digest`",
        ),
    ))
}

/// Feeds every data frame to the digest and always holds the latest one
/// back: only once the stream has ended and the digest matched is it
/// released (with any trailers). On a mismatch the body fails instead, so
/// the upstream never receives a complete body with a wrong digest, and the
/// request errors with `DigestMismatch`.
///
/// Caveat: an upstream that answers before reading the whole body has seen
/// every frame but the last, and its answer goes to the client; a
/// mismatch found afterwards only cuts the upstream's body short.
pub struct DigestChecked<B> {
    inner: B,
    /// None once the stream has ended (and matched).
    digest: Option<BodyDigest>,
    held: Option<Bytes>,
    trailers: Option<HeaderMap>,
    failed: bool,
}

impl<B> DigestChecked<B> {
    pub fn new(inner: B, digest: BodyDigest) -> Self {
        Self {
            inner,
            digest: Some(digest),
            held: None,
            trailers: None,
            failed: false,
        }
    }
}

impl<B> HttpBody for DigestChecked<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            if this.failed {
                return Poll::Ready(None);
            }
            let Some(digest) = this.digest.as_mut() else {
                // Matched: release the held frame, then the trailers.
                if let Some(data) = this.held.take() {
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            };
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        digest.update(&data);
                        if let Some(previous) = this.held.replace(data) {
                            return Poll::Ready(Some(Ok(Frame::data(previous))));
                        }
                        continue;
                    }
                    Err(frame) => match frame.into_trailers() {
                        // Trailers come last: the body is complete.
                        Ok(t) => this.trailers = Some(t),
                        Err(_) => continue,
                    },
                },
                None => {}
            }
            if let Some(digest) = this.digest.take()
                && digest.finish().is_err()
            {
                this.failed = true;
                this.held = None;
                this.trailers = None;
                return Poll::Ready(Some(Err(Box::new(DigestMismatch))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || (self.digest.is_none() && self.held.is_none() && self.trailers.is_none())
    }

    fn size_hint(&self) -> SizeHint {
        let held = self.held.as_ref().map_or(0, |b| b.len() as u64);
        if self.digest.is_none() {
            return SizeHint::with_exact(held);
        }
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_add(held));
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(held));
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::VecDeque;

    use http_body_util::BodyExt;
    use keygate_core::httpsig::content_digest_sha256;

    fn digest_of(body: &[u8]) -> BodyDigest {
        let h = vec![("content-digest", content_digest_sha256(body))];
        BodyDigest::from_headers(&h).unwrap()
    }

    /// A body of these frames, in order.
    struct Frames(VecDeque<Bytes>);

    impl HttpBody for Frames {
        type Data = Bytes;
        type Error = BoxError;
        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(self.get_mut().0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    fn chunks(parts: &[&'static [u8]]) -> Frames {
        Frames(parts.iter().map(|p| Bytes::from_static(p)).collect())
    }

    /// Polls frame by frame, answering what came out before the end or error.
    async fn drain<B: HttpBody<Data = Bytes, Error = BoxError> + Unpin>(
        mut body: B,
    ) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => out.extend_from_slice(&f.into_data().unwrap()),
                Err(e) => {
                    assert!(e.is::<DigestMismatch>());
                    return (out, false);
                }
            }
        }
        (out, true)
    }

    #[test]
    fn only_hmac_routes_may_set_the_content_header_rule() {
        let route = |auth: &str| {
            format!(
                "[gateway]\n[[gateway.routes]]\nname = \"r\"\nmatch = {{ path_prefix = \"/r\" }}\n\
                 upstream = \"http://127.0.0.1:1\"\nauth = \"{auth}\"\n\
                 hmac_cover_content_headers = false\n"
            )
        };
        let cfg = super::super::config::parse_text(&route("hmac"))
            .unwrap()
            .unwrap();
        assert_eq!(cfg.routes[0].hmac_cover_content_headers, Some(false));
        let errors = super::super::config::parse_text(&route("api_key")).unwrap_err();
        assert!(
            errors[0].contains("hmac_cover_content_headers: a api_key route takes no signature"),
            "{errors:?}"
        );
    }

    #[tokio::test]
    async fn a_matching_body_passes_whole_and_a_wrong_one_never_completes() {
        let good = DigestChecked::new(
            chunks(&[b"hel", b"lo ", b"world"]),
            digest_of(b"hello world"),
        );
        assert_eq!(drain(good).await, (b"hello world".to_vec(), true));
        let bad = DigestChecked::new(
            chunks(&[b"hel", b"lo ", b"World"]),
            digest_of(b"hello world"),
        );
        // Everything but the held last frame, then the error.
        assert_eq!(drain(bad).await, (b"hello ".to_vec(), false));
        let single = DigestChecked::new(chunks(&[b"x"]), digest_of(b"y"));
        assert_eq!(drain(single).await, (Vec::new(), false));
    }
}
