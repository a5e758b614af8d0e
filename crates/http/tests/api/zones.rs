//! Event time zones through the API and the event form: a zone set at creation reads back with
//! the local start, a local `starts_at` is read in the zone (daylight saving time included), an
//! unknown zone or a skipped local time is a 422 naming its field, an edit changes the zone, and
//! the pages show the start in the venue's zone with the weekday.

use serde_json::json;

use crate::helpers::{spawn_app, unnumbered};
use crate::pages::Browser;

// Created with a zone and an RFC 3339 start, the event reads back its zone and local start.
#[tokio::test]
async fn an_event_created_with_a_zone_reads_back_its_local_start() {
    let app = spawn_app().await;
    let mut body = unnumbered(10);
    body["starts_at"] = json!("2030-01-15T18:30:00Z");
    body["time_zone"] = json!("Europe/Vienna");
    let created = app
        .create_event(Some(&app.admin_token), &body)
        .await
        .expect(201);
    assert_eq!(created["time_zone"], "Europe/Vienna");
    assert_eq!(created["starts_at_local"], "2030-01-15T19:30:00+01:00");
    let id = created["id"].as_u64().unwrap();
    let read = app.get_event(id).await.expect(200);
    assert_eq!(read["starts_at"], "2030-01-15T18:30:00Z");
    assert_eq!(read["time_zone"], "Europe/Vienna");
    assert_eq!(read["starts_at_local"], "2030-01-15T19:30:00+01:00");
    // Without a zone an event is UTC.
    let plain = app
        .create_event(Some(&app.admin_token), &unnumbered(10))
        .await
        .expect(201);
    assert_eq!(plain["time_zone"], "UTC");
    assert_eq!(plain["starts_at_local"], "2030-06-01T20:00:00+00:00");
}

// A local start is read in the zone: 19:30 on 1 July 2027 in Vienna (summer time) is 17:30Z;
// 02:30 on 28 March 2027 does not exist there (the clocks jump from 02:00 to 03:00).
#[tokio::test]
async fn local_starts_follow_daylight_saving_time() {
    let app = spawn_app().await;
    let mut body = unnumbered(10);
    body["time_zone"] = json!("Europe/Vienna");
    body["starts_at"] = json!("2027-07-01T19:30");
    let summer = app
        .create_event(Some(&app.admin_token), &body)
        .await
        .expect(201);
    assert_eq!(summer["starts_at"], "2027-07-01T17:30:00Z");
    assert_eq!(summer["starts_at_local"], "2027-07-01T19:30:00+02:00");
    let before = app.event_count().await;
    body["starts_at"] = json!("2027-03-28T02:30");
    let gap = app
        .create_event(Some(&app.admin_token), &body)
        .await
        .problem(422);
    assert_eq!(gap["field"], "starts_at", "{gap}");
    assert!(
        gap["detail"]
            .as_str()
            .unwrap()
            .contains("does not exist in Europe/Vienna"),
        "{gap}"
    );
    assert_eq!(app.event_count().await, before, "nothing created");
}

// An unknown or malformed zone is a 422 naming `time_zone`, on create and on edit, and
// changes nothing.
#[tokio::test]
async fn unknown_zones_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let before = app.event_count().await;
    for bad in [
        json!("Europe/Atlantis"),
        json!(""),
        json!("Europe/Vienna; drop"),
        json!(7),
    ] {
        let mut body = unnumbered(10);
        body["time_zone"] = bad.clone();
        let problem = app
            .create_event(Some(&app.admin_token), &body)
            .await
            .problem(422);
        assert_eq!(problem["field"], "time_zone", "{bad}: {problem}");
    }
    assert_eq!(app.event_count().await, before);
    let id = app.admin_event(&unnumbered(10)).await;
    let mut edit = unnumbered(10);
    edit.as_object_mut().unwrap().remove("inventory");
    edit["version"] = json!(1);
    edit["time_zone"] = json!("Mars/Olympus_Mons");
    let problem = app
        .edit_event(Some(&app.admin_token), id, &edit)
        .await
        .problem(422);
    assert_eq!(problem["field"], "time_zone", "{problem}");
    assert_eq!(app.get_event(id).await.expect(200)["time_zone"], "UTC");
}

// An edit changes the zone; an edit without `time_zone` keeps it and reads a local start in it.
#[tokio::test]
async fn an_edit_changes_or_keeps_the_zone() {
    let app = spawn_app().await;
    let id = app.admin_event(&unnumbered(10)).await;
    let mut edit = unnumbered(10);
    edit.as_object_mut().unwrap().remove("inventory");
    edit["version"] = json!(1);
    edit["time_zone"] = json!("America/New_York");
    let changed = app
        .edit_event(Some(&app.admin_token), id, &edit)
        .await
        .expect(200);
    assert_eq!(changed["time_zone"], "America/New_York");
    assert_eq!(changed["starts_at_local"], "2030-06-01T16:00:00-04:00");
    edit.as_object_mut().unwrap().remove("time_zone");
    edit["version"] = changed["version"].clone();
    edit["starts_at"] = json!("2030-12-01T19:30");
    let kept = app
        .edit_event(Some(&app.admin_token), id, &edit)
        .await
        .expect(200);
    assert_eq!(kept["time_zone"], "America/New_York");
    assert_eq!(kept["starts_at"], "2030-12-02T00:30:00Z");
}

// The event form takes a zone; the date and time are read in it, the event page shows the
// start with the weekday in that zone, a skipped local time is a field error, and an unknown
// zone is one too.
#[tokio::test]
async fn the_event_form_reads_and_shows_the_venues_local_time() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app);
    b.sign_up("vera", true).await;
    let new_form = b.get("/events/new").await;
    assert!(
        new_form.text.contains("id=\"time_zone\""),
        "{}",
        new_form.text
    );
    let mut form = vec![
        ("name", "Neujahrskonzert"),
        ("description", "Waltzes"),
        ("date", "2030-01-01"),
        ("time", "11:15"),
        ("time_zone", "Europe/Atlantis"),
        ("venue", "Musikverein"),
        ("lat", "48.2"),
        ("lon", "16.37"),
        ("price", "90.00"),
        ("currency", "EUR"),
        ("kind", "ga"),
        ("capacity", "100"),
    ];
    let unknown = b.post("/events/new", &form).await;
    assert_eq!(unknown.status, 422);
    assert!(
        unknown
            .text
            .contains("Time zone: “Europe/Atlantis” is not a time zone we know"),
        "{}",
        unknown.text
    );
    form[4] = ("time_zone", "Europe/Vienna");
    form[2] = ("date", "2030-03-31");
    form[3] = ("time", "02:30");
    let gap = b.post("/events/new", &form).await;
    assert_eq!(gap.status, 422);
    assert!(
        gap.text
            .contains("Time: 2030-03-31 02:30 does not exist in Europe/Vienna"),
        "{}",
        gap.text
    );
    form[2] = ("date", "2030-01-01");
    form[3] = ("time", "11:15");
    let created = b.post("/events/new", &form).await;
    assert_eq!(created.status, 303, "{}", created.text);
    let location = created.location.unwrap();
    let page = b.get(&location).await;
    assert!(
        page.text.contains("Tue 1 Jan 2030, 11:15 CET"),
        "{}",
        page.text
    );
    let id: u64 = location.rsplit('/').next().unwrap().parse().unwrap();
    let read = app.get_event(id).await.expect(200);
    assert_eq!(read["starts_at"], "2030-01-01T10:15:00Z");
    assert_eq!(read["time_zone"], "Europe/Vienna");
    let home = b.get("/").await;
    assert!(home.text.contains("Tue 1 Jan 2030, 11:15 CET"), "card");
    let edit = b.get(&format!("/events/{id}/edit")).await;
    assert!(
        edit.text.contains("value=\"11:15\""),
        "local time in the form"
    );
    assert!(
        edit.text.contains("value=\"Europe/Vienna\""),
        "{}",
        edit.text
    );
}
