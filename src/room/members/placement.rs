//! Where a direct socket to a room goes: the room itself, or, when it holds as many direct
//! sockets as `scaling.members_per_object` allows, one of its shard gateways (the router
//! forwards the upgrade there; the room never proxies a socket).

use std::collections::BTreeMap;

/// Where the router sends a socket opening to the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// The room accepts it itself.
    Here,
    /// The gateway object of this name holds it, as a member of the room.
    Gateway(String),
}

/// The name of the room's `k`th shard gateway.
pub fn shard_gateway(room: &str, k: u32) -> String {
    format!("shard:{room}:{k}")
}

/// The room a shard gateway's name names (`shard:{room}:{k}`).
pub fn room_of_shard(gateway: &str) -> Option<&str> {
    let rest = gateway.strip_prefix("shard:")?;
    let (room, k) = rest.rsplit_once(':')?;
    k.parse::<u32>().ok().map(|_| room)
}

/// Where the next direct socket goes: here while the room holds fewer than `per_object`
/// direct sockets (0: always here), else the shard gateway with the fewest of its members
/// under `per_gateway` (the lowest `k` among equals), or the next shard after those in use.
/// `members` counts the room's members by gateway name. With `max_shards` > 0 no more shards
/// open than that: past it, the fullest are shared by the fewest-first rule.
pub fn place(
    room: &str,
    direct: usize,
    per_object: u32,
    per_gateway: u32,
    max_shards: u32,
    members: &BTreeMap<String, usize>,
) -> Placement {
    if per_object == 0 || direct < per_object as usize {
        return Placement::Here;
    }
    let per_gateway = per_gateway.max(1) as usize;
    let mut k = 0u32;
    let mut best: Option<(usize, u32)> = None;
    let mut fewest: Option<(usize, u32)> = None;
    while max_shards == 0 || k < max_shards {
        let name = shard_gateway(room, k);
        let Some(&count) = members.get(&name) else {
            break;
        };
        if count < per_gateway && best.is_none_or(|(least, _)| count < least) {
            best = Some((count, k));
        }
        if fewest.is_none_or(|(least, _)| count < least) {
            fewest = Some((count, k));
        }
        k += 1;
    }
    let k = match best {
        Some((_, k)) => k,
        None if max_shards > 0 && k >= max_shards => fewest.map_or(0, |(_, k)| k),
        None => k,
    };
    Placement::Gateway(shard_gateway(room, k))
}

/// The most shards a room needs: enough for `max_connections` members (0: no cap).
pub fn max_shards(max_connections: u32, per_gateway: u32) -> u32 {
    max_connections.div_ceil(per_gateway.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_fill_up_to_their_share_then_the_next_opens() {
        let mut members = BTreeMap::new();
        assert_eq!(place("r", 1, 2, 2, 0, &members), Placement::Here);
        assert_eq!(
            place("r", 2, 0, 2, 0, &members),
            Placement::Here,
            "0: never"
        );
        assert_eq!(
            place("r", 2, 2, 2, 0, &members),
            Placement::Gateway("shard:r:0".into())
        );
        members.insert("shard:r:0".to_owned(), 1);
        assert_eq!(
            place("r", 2, 2, 2, 0, &members),
            Placement::Gateway("shard:r:0".into())
        );
        members.insert("shard:r:0".to_owned(), 2);
        assert_eq!(
            place("r", 2, 2, 2, 0, &members),
            Placement::Gateway("shard:r:1".into())
        );
        members.insert("shard:r:1".to_owned(), 3);
        assert_eq!(
            place("r", 2, 2, 2, max_shards(4, 2), &members),
            Placement::Gateway("shard:r:0".into()),
            "past the cap of shards, the fewest"
        );
        assert_eq!(max_shards(0, 2), 0);
        assert_eq!(max_shards(5, 2), 3);
        assert_eq!(room_of_shard("shard:a:b:3"), Some("a:b"));
        assert_eq!(room_of_shard("endpoint:a:3"), None);
    }
}
