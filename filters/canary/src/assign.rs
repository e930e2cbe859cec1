//! Which variant a request gets: override header, rollback, sticky hash,
//! pin cookie, or a random draw; plus the cookie helpers.

use crate::config::{BUCKETS, IdSource, PinCookie, Settings};

/// A variant of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// The stable cluster.
    Stable,
    /// The canary cluster.
    Canary,
}

impl Variant {
    /// `stable` or `canary`.
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Stable => "stable",
            Variant::Canary => "canary",
        }
    }

    /// Parse [`Variant::as_str`].
    pub fn parse(s: &str) -> Option<Variant> {
        match s {
            "stable" => Some(Variant::Stable),
            "canary" => Some(Variant::Canary),
            _ => None,
        }
    }
}

/// Why a request got its variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Basis {
    /// The override header.
    Override,
    /// The canary was rolled back.
    RolledBack,
    /// The hash of the sticky id.
    Sticky,
    /// The pin cookie from an earlier response.
    Pinned,
    /// A random draw (no id, no pin).
    Random,
}

impl Basis {
    /// A metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Override => "override",
            Basis::RolledBack => "rolled_back",
            Basis::Sticky => "sticky",
            Basis::Pinned => "pinned",
            Basis::Random => "random",
        }
    }
}

/// The request fields assignment looks at.
pub trait RequestFacts {
    /// First value of a header (lower-case name).
    fn header(&self, name: &str) -> Option<String>;
    /// All values of a header.
    fn header_all(&self, name: &str) -> Vec<String>;
}

/// Decide the variant.
///
/// Order: override header; rollback (everyone stable); sticky id hashed to a
/// bucket (canary iff bucket < weight, so raising the weight only ever adds
/// users to the canary); pin cookie (honoured while the weight is strictly
/// between 0 and 100%); otherwise a random bucket.
pub fn assign(
    s: &Settings,
    req: &dyn RequestFacts,
    weight: u32,
    rolled_back: bool,
    random: &mut dyn FnMut() -> u64,
) -> (Variant, Basis) {
    if let Some(o) = &s.override_header
        && let Some(value) = req.header(&o.header)
    {
        let value = value.trim();
        if value == o.always {
            return (Variant::Canary, Basis::Override);
        }
        if value == o.never {
            return (Variant::Stable, Basis::Override);
        }
    }
    if rolled_back {
        return (Variant::Stable, Basis::RolledBack);
    }
    if let Some(id) = s.sticky.as_ref().and_then(|src| sticky_id(src, req)) {
        return (by_bucket(bucket(&s.salt, &id), weight), Basis::Sticky);
    }
    if let Some(pin) = &s.pin_cookie
        && let Some(value) = cookie(req, &pin.name)
        && let Some(pinned) = Variant::parse(&value)
    {
        let honoured = match pinned {
            Variant::Canary => weight > 0,
            Variant::Stable => weight < BUCKETS,
        };
        if honoured {
            return (pinned, Basis::Pinned);
        }
    }
    let b = (random() % BUCKETS as u64) as u32;
    (by_bucket(b, weight), Basis::Random)
}

fn by_bucket(bucket: u32, weight: u32) -> Variant {
    if bucket < weight {
        Variant::Canary
    } else {
        Variant::Stable
    }
}

fn sticky_id(source: &IdSource, req: &dyn RequestFacts) -> Option<String> {
    let id = match source {
        IdSource::Header(h) => req.header(h),
        IdSource::Cookie(c) => cookie(req, c),
    }?;
    let id = id.trim().to_string();
    (!id.is_empty()).then_some(id)
}

/// The user's bucket in `[0, 10000)`: FNV-1a 64 of `salt`, a zero byte and
/// `id`, through the SplitMix64 finaliser. Stable across processes and
/// versions, so every instance assigns a user alike.
pub fn bucket(salt: &str, id: &str) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in salt.bytes().chain([0u8]).chain(id.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    (h % BUCKETS as u64) as u32
}

/// The value of cookie `name` from the `cookie` header(s).
pub fn cookie(req: &dyn RequestFacts, name: &str) -> Option<String> {
    req.header_all("cookie")
        .iter()
        .flat_map(|line| line.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k.trim() == name).then(|| v.trim().trim_matches('"').to_string())
        })
}

/// The `set-cookie` value pinning `variant`.
pub fn pin_cookie_header(pin: &PinCookie, variant: Variant) -> String {
    let mut v = format!(
        "{}={}; Path={}; Max-Age={}; HttpOnly; SameSite=Lax",
        pin.name,
        variant.as_str(),
        pin.path,
        pin.max_age.as_secs().max(1)
    );
    if pin.secure {
        v.push_str("; Secure");
    }
    v
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::CanaryConfig;

    #[derive(Default)]
    struct Req(Vec<(&'static str, String)>);

    impl Req {
        fn with(mut self, name: &'static str, value: &str) -> Req {
            self.0.push((name, value.to_string()));
            self
        }
    }

    impl RequestFacts for Req {
        fn header(&self, name: &str) -> Option<String> {
            self.0
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        }
        fn header_all(&self, name: &str) -> Vec<String> {
            self.0
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .collect()
        }
    }

    fn settings(extra: serde_json::Value) -> Settings {
        let mut v = json!({"stable": {"cluster": "v1"}, "canary": {"cluster": "v2", "weight": 10}});
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        Settings::compile(serde_json::from_value::<CanaryConfig>(v).unwrap()).unwrap()
    }

    fn counter() -> impl FnMut() -> u64 {
        let mut n = 0u64;
        move || {
            n = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
            n
        }
    }

    #[test]
    fn bucket_is_stable_and_spread() {
        // Pinned values (checked against an independent Python FNV-1a + SplitMix64):
        // a change here would reshuffle every user in production.
        assert_eq!(
            [bucket("default", "alice"), bucket("checkout", "user-42")],
            [7568, 1747]
        );
        assert_ne!(bucket("a", "alice"), bucket("b", "alice"), "salt matters");
        let n = 100_000;
        let below_1000 = (0..n)
            .filter(|i| bucket("s", &format!("user-{i}")) < 1000)
            .count() as f64;
        let sigma = (n as f64 * 0.1 * 0.9).sqrt();
        assert!(
            (below_1000 - n as f64 * 0.1).abs() < 5.0 * sigma,
            "{below_1000}"
        );
    }

    #[test]
    fn sticky_assignment_is_stable_and_monotone() {
        let s = settings(json!({"sticky": {"header": "x-user-id"}}));
        let mut r = counter();
        let users: Vec<String> = (0..2000).map(|i| format!("u{i}")).collect();
        let mut previous: Vec<Variant> = vec![Variant::Stable; users.len()];
        for weight in [0, 100, 500, 2500, 5000, 9999, 10_000] {
            let mut on_canary = 0;
            for (i, u) in users.iter().enumerate() {
                let req = Req::default().with("x-user-id", u);
                let (v, basis) = assign(&s, &req, weight, false, &mut r);
                assert_eq!(basis, Basis::Sticky);
                assert_eq!(
                    assign(&s, &req, weight, false, &mut r).0,
                    v,
                    "same user, same answer"
                );
                if previous[i] == Variant::Canary {
                    assert_eq!(
                        v,
                        Variant::Canary,
                        "user {u} left the canary when the weight rose to {weight}"
                    );
                }
                previous[i] = v;
                on_canary += (v == Variant::Canary) as u32;
            }
            if weight == 0 {
                assert_eq!(on_canary, 0);
            }
            if weight == 10_000 {
                assert_eq!(on_canary, 2000);
            }
        }
    }

    #[test]
    fn sticky_cookie_and_no_id_falls_back_to_random() {
        let s = settings(json!({"sticky": {"cookie": "uid"}}));
        let mut r = counter();
        let req = Req::default().with("cookie", "a=1; uid=bob; c=3");
        assert_eq!(assign(&s, &req, 5000, false, &mut r).1, Basis::Sticky);
        assert_eq!(
            assign(&s, &Req::default(), 5000, false, &mut r).1,
            Basis::Random
        );
        assert_eq!(
            assign(
                &s,
                &Req::default().with("cookie", "uid="),
                5000,
                false,
                &mut r
            )
            .1,
            Basis::Random
        );
    }

    #[test]
    fn random_split_follows_the_weight() {
        let s = settings(json!({}));
        let mut state = 99u64;
        let mut rng = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let n = 50_000;
        let hits = (0..n)
            .filter(|_| assign(&s, &Req::default(), 500, false, &mut rng).0 == Variant::Canary)
            .count() as f64;
        let sigma = (n as f64 * 0.05 * 0.95).sqrt();
        assert!((hits - n as f64 * 0.05).abs() < 5.0 * sigma, "{hits}");
    }

    #[test]
    fn override_beats_everything_including_rollback() {
        let s = settings(json!({"override": {}, "sticky": {"header": "x-user-id"}}));
        let mut r = counter();
        let always = Req::default()
            .with("x-canary", "always")
            .with("x-user-id", "u");
        let never = Req::default().with("x-canary", "never");
        assert_eq!(
            assign(&s, &always, 0, true, &mut r),
            (Variant::Canary, Basis::Override)
        );
        assert_eq!(
            assign(&s, &never, 10_000, false, &mut r),
            (Variant::Stable, Basis::Override)
        );
        let other = Req::default().with("x-canary", "maybe");
        assert_ne!(assign(&s, &other, 10_000, false, &mut r).1, Basis::Override);
    }

    #[test]
    fn rollback_sends_everyone_to_stable() {
        let s = settings(json!({"sticky": {"header": "x-user-id"}}));
        let mut r = counter();
        for i in 0..200 {
            let req = Req::default().with("x-user-id", &format!("u{i}"));
            assert_eq!(
                assign(&s, &req, 10_000, true, &mut r),
                (Variant::Stable, Basis::RolledBack)
            );
        }
    }

    #[test]
    fn pin_cookie_is_honoured_within_bounds() {
        let s = settings(json!({"pin_cookie": {}}));
        let mut r = counter();
        let pinned_canary = Req::default().with("cookie", "weir-canary=canary");
        let pinned_stable = Req::default().with("cookie", "x=y; weir-canary=stable");
        assert_eq!(
            assign(&s, &pinned_canary, 1, false, &mut r),
            (Variant::Canary, Basis::Pinned)
        );
        assert_eq!(
            assign(&s, &pinned_stable, 9999, false, &mut r),
            (Variant::Stable, Basis::Pinned)
        );
        assert_eq!(
            assign(&s, &pinned_canary, 0, false, &mut r),
            (Variant::Stable, Basis::Random),
            "canary off"
        );
        assert_eq!(
            assign(&s, &pinned_stable, 10_000, false, &mut r),
            (Variant::Canary, Basis::Random),
            "all on canary"
        );
        let junk = Req::default().with("cookie", "weir-canary=blue");
        assert_eq!(assign(&s, &junk, 5000, false, &mut r).1, Basis::Random);
    }

    #[test]
    fn cookie_parsing_and_pin_header() {
        let req = Req::default()
            .with("cookie", "a=1; b=\"two\"")
            .with("cookie", "c=3");
        assert_eq!(cookie(&req, "b").as_deref(), Some("two"));
        assert_eq!(
            cookie(&req, "c").as_deref(),
            Some("3"),
            "second cookie header"
        );
        assert_eq!(cookie(&req, "d"), None);
        let s = settings(
            json!({"pin_cookie": {"name": "pin", "max_age": "1h", "secure": false, "path": "/app"}}),
        );
        assert_eq!(
            pin_cookie_header(s.pin_cookie.as_ref().unwrap(), Variant::Canary),
            "pin=canary; Path=/app; Max-Age=3600; HttpOnly; SameSite=Lax"
        );
        let s = settings(json!({"pin_cookie": {}}));
        assert!(
            pin_cookie_header(s.pin_cookie.as_ref().unwrap(), Variant::Stable)
                .ends_with("; Secure")
        );
    }
}
