//! How rooms spread over objects (`scaling` in the settings; README, "Scaling"): which
//! destinations of a Spring-style endpoint live in a room of their own, and when a room's new
//! sockets land on gateway objects instead of the room's own.

use serde::{Deserialize, Serialize};

use crate::room_name;

/// The placeholder a room template names its room with.
const ROOM: &str = "{room}";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScalingSettings {
    /// Destinations that live in a room of their own, as templates with one `{room}`, such as
    /// `"/sub/chat/room/{room}"`: an endpoint's socket that subscribes or sends to
    /// `/sub/chat/room/7` uses room `7` (also `/rooms/7` on every rung). A SEND whose
    /// destination is filled from its body (`destinations.application`) is matched once
    /// filled. Other destinations stay in the endpoint's own room. Empty (the default): an
    /// endpoint is one room, and its sockets live on it.
    pub room_destinations: Vec<String>,
    /// How many sockets a room's own object holds before new ones land on gateway objects
    /// that the room fans out to once each. 0: never.
    pub members_per_object: u32,
    /// How many of a room's sockets each of its gateways holds.
    pub members_per_gateway: u32,
    /// How many gateway objects an endpoint with `room_destinations` spreads its sockets over.
    pub endpoint_gateways: u32,
}

impl Default for ScalingSettings {
    fn default() -> Self {
        Self {
            room_destinations: Vec::new(),
            members_per_object: 1_000,
            members_per_gateway: 1_000,
            endpoint_gateways: 8,
        }
    }
}

impl ScalingSettings {
    /// Why these settings cannot work, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        for template in &self.room_destinations {
            let placeholders = template.matches(ROOM).count();
            if placeholders != 1 || !template.starts_with('/') {
                return Err(format!(
                    "scaling.room_destinations: {template:?} must be a destination with exactly \
                     one {ROOM}, such as \"/sub/chat/room/{ROOM}\""
                ));
            }
        }
        if self.members_per_gateway == 0 || self.endpoint_gateways == 0 {
            return Err(
                "scaling.members_per_gateway and scaling.endpoint_gateways must be at least 1"
                    .to_owned(),
            );
        }
        Ok(())
    }

    /// Whether an endpoint's sockets live on gateways (rooms are named by destinations).
    pub fn rooms_by_destination(&self) -> bool {
        !self.room_destinations.is_empty()
    }

    /// The room a destination lives in by the templates: `Some(Ok(room))` when one matches and
    /// names a valid room, `Some(Err(why))` when one matches but names none, `None` when no
    /// template matches (the destination stays in the endpoint's room).
    pub fn room_of(&self, destination: &str) -> Option<Result<String, String>> {
        self.room_destinations.iter().find_map(|template| {
            let (before, after) = template.split_once(ROOM)?;
            let name = destination.strip_prefix(before)?.strip_suffix(after)?;
            if name.is_empty() || name.contains('/') {
                return None;
            }
            Some(match room_name::validate(name) {
                Ok(room) => Ok(room.to_owned()),
                Err(reason) => Err(format!(
                    "{destination} names room {name:?}, which is no room name: {reason}"
                )),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> ScalingSettings {
        ScalingSettings {
            room_destinations: vec!["/sub/chat/room/{room}".into(), "/topic/{room}.news".into()],
            ..ScalingSettings::default()
        }
    }

    #[test]
    fn a_destination_matching_a_template_names_its_room() {
        let seed = seed();
        assert_eq!(seed.room_of("/sub/chat/room/7"), Some(Ok("7".into())));
        assert_eq!(seed.room_of("/topic/lobby.news"), Some(Ok("lobby".into())));
        assert_eq!(seed.room_of("/sub/chat/room/"), None, "no name");
        assert_eq!(
            seed.room_of("/sub/chat/room/7/more"),
            None,
            "one segment only"
        );
        assert_eq!(seed.room_of("/topic/greetings"), None);
        assert!(matches!(seed.room_of("/sub/chat/room/-x"), Some(Err(_))));
    }

    #[test]
    fn a_template_needs_exactly_one_room_placeholder() {
        assert_eq!(seed().check(), Ok(()));
        for bad in ["/sub/chat/room", "/a/{room}/{room}", "sub/{room}"] {
            let settings = ScalingSettings {
                room_destinations: vec![bad.into()],
                ..ScalingSettings::default()
            };
            assert!(settings.check().is_err(), "{bad}");
        }
    }
}
