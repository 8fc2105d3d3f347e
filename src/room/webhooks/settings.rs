//! The webhook settings (`webhooks` in `ROOM_SETTINGS`) and the signing key (the
//! `WEBHOOK_SECRET` secret), checked together: a URL without a usable secret is a
//! misconfiguration, and the room fails closed as with any invalid settings.

use serde::{Deserialize, Serialize};

use super::event::EventKind;
use crate::room::base64;

/// Where and how a room sends its webhooks. Off unless `url` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Where batches are POSTed (`https://…`, or `http://…` for a receiver on a private
    /// network or in tests). None: no webhooks, nothing kept.
    pub url: Option<String>,
    /// Which events are sent, by type: `room.occupied`, `room.vacated`, `member.joined`,
    /// `member.left`, `refusal`. Default: all of them. (`message` events follow `destinations`.)
    pub events: Vec<String>,
    /// Destinations whose messages are sent as `message` events (patterns as in token
    /// grants: `*` within a segment, `**` across). Default: none.
    pub destinations: Vec<String>,
    /// Most events in one batch. Default 100.
    pub max_batch_events: u32,
    /// Most bytes of one batch's body; a `message` event whose body would not fit in one
    /// batch is sent without its body. Default 256 KiB, at most 1 MiB.
    pub max_batch_bytes: u32,
    /// The longest an event waits for company before its batch is sent, in ms. Default 1000.
    pub max_delay_ms: u64,
    /// How long a room stays occupied with nobody in it before `room.vacated` (a reconnect
    /// within it sends nothing), in ms. Default 30000.
    pub vacated_grace_ms: u64,
    /// Most events the outbox holds; past it the oldest are dropped and counted. Default 10000.
    pub max_outbox_events: u32,
    /// Most bytes the outbox holds (the events' JSON); past it the oldest are dropped.
    /// The outbox is loaded at every wake: default 4 MiB, at most 16 MiB.
    pub max_outbox_bytes: u64,
    /// The first retry's delay after a failed delivery, in ms; it doubles with each failure.
    /// Default 1000.
    pub retry_min_ms: u64,
    /// The longest delay between retries, in ms. Default 600000 (10 minutes).
    pub retry_max_ms: u64,
    /// The signing key, from the `WEBHOOK_SECRET` secret (never from the settings' JSON).
    #[serde(skip)]
    pub key: SigningKey,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            url: None,
            events: EventKind::PRESENCE_AND_REFUSALS
                .iter()
                .map(|kind| kind.as_str().to_owned())
                .collect(),
            destinations: Vec::new(),
            max_batch_events: 100,
            max_batch_bytes: 256 * 1024,
            max_delay_ms: 1_000,
            vacated_grace_ms: 30_000,
            max_outbox_events: 10_000,
            max_outbox_bytes: 4 * 1024 * 1024,
            retry_min_ms: 1_000,
            retry_max_ms: 600_000,
            key: SigningKey::default(),
        }
    }
}

/// The longest URL accepted.
const MAX_URL_BYTES: usize = 2048;

impl WebhookSettings {
    /// Whether webhooks are on (a URL is set; [`check`](Self::check) made sure of the key).
    pub fn enabled(&self) -> bool {
        self.url.is_some()
    }

    /// Whether events of this kind are sent.
    pub fn sends(&self, kind: EventKind) -> bool {
        self.enabled()
            && match kind {
                EventKind::Message => !self.destinations.is_empty(),
                _ => self.events.iter().any(|name| name == kind.as_str()),
            }
    }

    /// Why these settings cannot work, if they cannot (the key is checked by
    /// [`with_secret`](Self::with_secret), where the secret is read).
    pub fn check(&self) -> Result<(), String> {
        let Some(url) = &self.url else {
            return Ok(());
        };
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        let host = rest.and_then(|rest| rest.split(['/', '?', '#']).next());
        if url.len() > MAX_URL_BYTES
            || host.is_none_or(str::is_empty)
            || url.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            // Its origin alone: the rest often carries a secret, and this text is logged and
            // answers every client while the settings cannot be read.
            let origin = crate::room::log::url_origin(url);
            return Err(format!(
                "webhooks.url (at {origin:?}) is not an http(s) URL of at most {MAX_URL_BYTES} bytes"
            ));
        }
        if let Some(unknown) = self
            .events
            .iter()
            .find(|name| EventKind::parse(name).is_none_or(|kind| kind == EventKind::Message))
        {
            return Err(format!(
                "webhooks.events names {unknown:?}; known: room.occupied, room.vacated, member.joined, member.left, refusal (message events follow webhooks.destinations)"
            ));
        }
        let within = |name: &str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(format!(
                    "webhooks.{name} is {value}; it must be from {min} to {max}"
                ))
            }
        };
        within("max_batch_events", self.max_batch_events.into(), 1, 1_000)?;
        within(
            "max_batch_bytes",
            self.max_batch_bytes.into(),
            4_096,
            1 << 20,
        )?;
        within(
            "max_outbox_events",
            self.max_outbox_events.into(),
            1,
            100_000,
        )?;
        within(
            "max_outbox_bytes",
            self.max_outbox_bytes,
            self.max_batch_bytes.into(),
            16 << 20,
        )?;
        within("max_delay_ms", self.max_delay_ms, 0, 3_600_000)?;
        within("vacated_grace_ms", self.vacated_grace_ms, 0, 86_400_000)?;
        within("retry_min_ms", self.retry_min_ms, 100, 3_600_000)?;
        within(
            "retry_max_ms",
            self.retry_max_ms,
            self.retry_min_ms,
            86_400_000,
        )
    }

    /// The settings with the signing key read from `WEBHOOK_SECRET`: a Standard Webhooks
    /// secret, `whsec_` and the key in base64 (24 to 64 bytes). Required when a URL is set.
    pub fn with_secret(mut self, secret: Option<&str>) -> Result<Self, String> {
        if !self.enabled() {
            return Ok(self);
        }
        let secret = secret.ok_or(
            "webhooks.url is set but the WEBHOOK_SECRET secret is not (generate one: whsec_ followed by 32 random bytes in base64)",
        )?;
        let key = secret
            .trim()
            .strip_prefix("whsec_")
            .and_then(|encoded| base64::decode(encoded, base64::STANDARD).ok())
            .filter(|key| (24..=64).contains(&key.len()))
            .ok_or("WEBHOOK_SECRET must be whsec_ followed by 24 to 64 bytes in base64")?;
        self.key = SigningKey(key);
        Ok(self)
    }
}

/// The key batches are signed with; never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SigningKey(pub(super) Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "SigningKey(none)"
        } else {
            "SigningKey(set)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url(url: &str) -> WebhookSettings {
        WebhookSettings {
            url: Some(url.to_owned()),
            ..WebhookSettings::default()
        }
    }

    #[test]
    fn a_url_needs_a_standard_webhooks_secret() {
        let settings = with_url("https://example.com/hooks");
        assert_eq!(settings.check(), Ok(()));
        assert!(settings.clone().with_secret(None).is_err());
        assert!(settings.clone().with_secret(Some("plain")).is_err());
        assert!(settings
            .clone()
            .with_secret(Some("whsec_c2hvcnQ="))
            .is_err());
        let keyed = settings
            .with_secret(Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
            .expect("a 24-byte key");
        assert_eq!(keyed.key.0.len(), 24);
        assert_eq!(format!("{:?}", keyed.key), "SigningKey(set)");
        assert!(WebhookSettings::default().with_secret(None).is_ok(), "off");
    }

    #[test]
    fn bad_urls_events_and_bounds_are_refused() {
        for url in ["ftp://x", "https://", "https:// x", "example.com"] {
            assert!(with_url(url).check().is_err(), "{url}");
        }
        let mut settings = with_url("http://127.0.0.1:8080/in");
        settings.events = vec!["member.joined".into(), "message".into()];
        assert!(settings.check().is_err());
        settings.events = vec![];
        settings.max_batch_bytes = 10;
        assert!(settings.check().is_err());
    }
}
