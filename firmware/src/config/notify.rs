//! `[[notify.webhook]]` and `[notify.mqtt]`: where event notifications go.

use std::time::Duration;

use toml::{Table, Value};

use super::{ConfigError, Section};
use crate::notify::webhook::{EventFilter, UnknownEvent};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct NotifyConfig {
    pub webhooks: Vec<WebhookSettings>,
    pub mqtt: Option<MqttSettings>,
}

#[derive(Clone, PartialEq)]
pub struct WebhookSettings {
    /// `http://` or `https://`.
    pub url: String,
    /// HMAC-SHA256 key for the signature header.
    pub secret: String,
    pub timeout: Duration,
    pub retries: u32,
    /// Which updates are sent (`events`), checked when the configuration is read.
    pub events: crate::notify::webhook::EventFilter,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("events", &self.events)
            .finish()
    }
}

#[derive(Clone, PartialEq)]
pub struct MqttSettings {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Topics are `<base_topic>/motion`, `.../person`, `.../availability`, ...;
    /// `None`: `mecam/<device id>`.
    pub base_topic: Option<String>,
    /// Home Assistant's discovery prefix.
    pub discovery_prefix: String,
    /// The device's name in Home Assistant.
    pub device_name: String,
}

impl std::fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("base_topic", &self.base_topic)
            .field("discovery_prefix", &self.discovery_prefix)
            .field("device_name", &self.device_name)
            .finish()
    }
}

pub(super) fn read(n: &mut NotifyConfig, t: &Table) -> Result<(), ConfigError> {
    let s = Section::new("notify", t, &["webhook", "mqtt"])?;
    for (key, t) in s.tables("webhook")? {
        let w = Section::new(
            key,
            t,
            &["url", "secret", "timeout_secs", "retries", "events"],
        )?;
        let url = w
            .string("url")?
            .ok_or_else(|| ConfigError::new(w.key("url"), "is missing"))?;
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://"))
            || url.parse::<http::Uri>().is_err()
        {
            return Err(ConfigError::new(
                w.key("url"),
                format!("is `{url}`; expected an http:// or https:// URL"),
            ));
        }
        let secret = w.string("secret")?.unwrap_or("");
        if secret.len() < 16 {
            return Err(ConfigError::new(
                w.key("secret"),
                "must be at least 16 characters: receivers check the signature with it",
            ));
        }
        let events = match w.value("events") {
            None => EventFilter::default(),
            Some(Value::Array(names)) => {
                let names = names
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        ConfigError::new(w.key("events"), "must be a list of strings")
                    })?;
                EventFilter::parse(&names).map_err(|UnknownEvent(name)| {
                    ConfigError::new(
                        w.key("events"),
                        format!(
                            "has `{name}`; use `motion` or `person`, alone or with \
                             `.started`, `.updated` or `.ended`"
                        ),
                    )
                })?
            }
            Some(v) => {
                return Err(ConfigError::new(
                    w.key("events"),
                    format!("is {}; expected a list of strings", super::describe(v)),
                ));
            }
        };
        n.webhooks.push(WebhookSettings {
            url: url.to_owned(),
            secret: secret.to_owned(),
            timeout: Duration::from_secs(w.integer("timeout_secs", 1..=60)?.unwrap_or(5)),
            retries: w.integer("retries", 0..=10)?.unwrap_or(3) as u32,
            events,
        });
    }
    if let Some(t) = s.table("mqtt")? {
        let m = Section::new(
            "notify.mqtt",
            t,
            &[
                "host",
                "port",
                "username",
                "password",
                "base_topic",
                "discovery_prefix",
                "device_name",
            ],
        )?;
        let host = m
            .string("host")?
            .filter(|h| !h.is_empty())
            .ok_or_else(|| ConfigError::new(m.key("host"), "is missing: the broker's address"))?;
        let topic_ok = |t: &str| !t.is_empty() && !t.contains(['+', '#']) && !t.ends_with('/');
        let base_topic = m.string("base_topic")?;
        if let Some(base_topic) = base_topic.filter(|t| !topic_ok(t)) {
            return Err(ConfigError::new(
                m.key("base_topic"),
                format!("is `{base_topic}`; a topic without wildcards or a trailing `/`"),
            ));
        }
        let discovery_prefix = m.string("discovery_prefix")?.unwrap_or("homeassistant");
        if !topic_ok(discovery_prefix) {
            return Err(ConfigError::new(
                m.key("discovery_prefix"),
                format!("is `{discovery_prefix}`; a topic without wildcards"),
            ));
        }
        n.mqtt = Some(MqttSettings {
            host: host.to_owned(),
            port: m.integer("port", 1..=65535)?.unwrap_or(1883) as u16,
            username: m.string("username")?.map(str::to_owned),
            password: m.string("password")?.map(str::to_owned),
            base_topic: base_topic.map(str::to_owned),
            discovery_prefix: discovery_prefix.to_owned(),
            device_name: m.string("device_name")?.unwrap_or("ME_CAM").to_owned(),
        });
    }
    Ok(())
}
