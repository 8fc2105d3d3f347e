//! The registry of active rooms (`GET /rooms`) in SQL, run on SQLite itself with the platform's
//! limits (see `support/sqlite.rs`): what it keeps, how far, and in what pages.

#[path = "support/sqlite.rs"]
mod sqlite;

use sqlite::NativeSql;
use stomp_rooms::room::registry::{ActiveRooms, Page, MAX_LISTED, MAX_TRACKED};

fn registry(database: &NativeSql) -> ActiveRooms<NativeSql> {
    ActiveRooms::open(database.clone()).expect("the registry opens")
}

#[test]
fn an_active_room_is_listed_once_with_its_first_time_until_it_is_forgotten() {
    let database = NativeSql::new();
    let rooms = registry(&database);
    rooms.activate("lobby", 1_000).unwrap();
    rooms.activate("lobby", 2_000).unwrap();
    rooms.activate("annex", 3_000).unwrap();
    let page = rooms.page("").unwrap();
    assert_eq!(
        page,
        Page {
            rooms: vec![("annex".into(), 3_000), ("lobby".into(), 1_000)],
            more: false
        }
    );
    rooms.forget("lobby").unwrap();
    // Reopened, as the registry object is after an eviction.
    let reopened = registry(&database);
    assert_eq!(
        reopened.page("").unwrap().rooms,
        vec![("annex".into(), 3_000)]
    );
}

#[test]
fn pages_follow_the_cursor_and_say_when_more_follow() {
    let database = NativeSql::new();
    let rooms = registry(&database);
    let count = MAX_LISTED + 5;
    for n in 0..count {
        rooms.activate(&format!("room-{n:04}"), n).unwrap();
    }
    let first = rooms.page("").unwrap();
    assert_eq!(first.rooms.len() as u64, MAX_LISTED);
    assert!(first.more);
    let last = &first.rooms.last().unwrap().0;
    let second = rooms.page(last).unwrap();
    assert_eq!(second.rooms.len() as u64, count - MAX_LISTED);
    assert!(!second.more);
    assert!(second.rooms.iter().all(|(room, _)| room > last));
}

#[test]
fn the_registry_keeps_no_more_than_its_bound() {
    let database = NativeSql::new();
    let rooms = registry(&database);
    for n in 0..MAX_TRACKED + 3 {
        rooms.activate(&format!("r{n:06}"), n).unwrap();
    }
    let mut kept = 0;
    let mut after = String::new();
    loop {
        let page = rooms.page(&after).unwrap();
        kept += page.rooms.len() as u64;
        match page.rooms.last() {
            Some((room, _)) if page.more => after = room.clone(),
            _ => break,
        }
    }
    assert_eq!(kept, MAX_TRACKED);
}
