//! Home Assistant MQTT discovery: the retained `config` messages that make the camera
//! appear in Home Assistant as one device with a motion sensor, a person (occupancy)
//! sensor and an image entity showing the snapshot of the latest event.
//!
//! Only keys documented since Home Assistant 2023.7 (which added the MQTT `image`
//! platform) are used, in their long form, so the configs read the same in a broker
//! browser as in Home Assistant's documentation.

use serde_json::{Value, json};

use super::{AVAILABILITY, MOTION, MqttConfig, OFF, OFFLINE, ON, ONLINE, PERSON, SNAPSHOT};
use crate::notify::VERSION;

/// A discovery message: its topic and JSON payload (published retained).
#[derive(Debug, Clone, PartialEq)]
pub struct Discovery {
    pub topic: String,
    pub payload: Value,
}

/// The `config` messages for this camera's entities.
pub fn configs(config: &MqttConfig) -> Vec<Discovery> {
    let node = config.node_id();
    let sensor = |leaf: &str, name: &str, device_class: &str| Discovery {
        topic: format!(
            "{}/binary_sensor/{node}/{leaf}/config",
            config.discovery_prefix
        ),
        payload: with_common(
            config,
            leaf,
            json!({
                "name": name,
                "device_class": device_class,
                "state_topic": config.topic(leaf),
                "payload_on": ON,
                "payload_off": OFF,
            }),
        ),
    };
    vec![
        sensor(MOTION, "Motion", "motion"),
        // "occupancy": Home Assistant shows it as Detected/Clear, which reads right
        // for "a person is in view".
        sensor(PERSON, "Person", "occupancy"),
        Discovery {
            topic: format!("{}/image/{node}/{SNAPSHOT}/config", config.discovery_prefix),
            payload: with_common(
                config,
                SNAPSHOT,
                json!({
                    "name": "Snapshot",
                    "image_topic": config.topic(SNAPSHOT),
                    "content_type": "image/jpeg",
                }),
            ),
        },
    ]
}

/// Adds what every entity of the camera shares: its unique id, availability and the
/// device block that groups the entities under one device.
fn with_common(config: &MqttConfig, leaf: &str, mut entity: Value) -> Value {
    let node = config.node_id();
    let common = json!({
        "unique_id": format!("mecam_{node}_{leaf}"),
        "availability_topic": config.topic(AVAILABILITY),
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "device": {
            "identifiers": [format!("mecam_{node}")],
            "name": config.device_name,
            "manufacturer": "ME_CAM",
            "model": "ME_CAM",
            "sw_version": VERSION,
        },
    });
    if let (Some(entity), Value::Object(common)) = (entity.as_object_mut(), common) {
        entity.extend(common);
    }
    entity
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_describe_one_device_with_three_entities() {
        let config = MqttConfig {
            device_name: "Front door".into(),
            ..MqttConfig::new("broker.lan", "b8:27:eb:01:02:03")
        };
        let configs = configs(&config);
        let topics: Vec<&str> = configs.iter().map(|c| c.topic.as_str()).collect();
        assert_eq!(
            topics,
            [
                "homeassistant/binary_sensor/b8_27_eb_01_02_03/motion/config",
                "homeassistant/binary_sensor/b8_27_eb_01_02_03/person/config",
                "homeassistant/image/b8_27_eb_01_02_03/snapshot/config",
            ]
        );
        let motion = &configs[0].payload;
        assert_eq!(motion["device_class"], "motion");
        assert_eq!(motion["state_topic"], "mecam/b8_27_eb_01_02_03/motion");
        assert_eq!(motion["payload_on"], "ON");
        assert_eq!(motion["unique_id"], "mecam_b8_27_eb_01_02_03_motion");
        assert_eq!(
            motion["availability_topic"],
            "mecam/b8_27_eb_01_02_03/availability"
        );
        assert_eq!(configs[1].payload["device_class"], "occupancy");
        let image = &configs[2].payload;
        assert_eq!(image["image_topic"], "mecam/b8_27_eb_01_02_03/snapshot");
        assert_eq!(image["content_type"], "image/jpeg");
        for c in &configs {
            assert_eq!(c.payload["device"], motion["device"], "one device");
        }
        assert_eq!(motion["device"]["name"], "Front door");
        assert_eq!(motion["device"]["model"], "ME_CAM");
        assert_eq!(motion["device"]["sw_version"], VERSION);
        assert_eq!(
            motion["device"]["identifiers"][0],
            "mecam_b8_27_eb_01_02_03"
        );
    }
}
