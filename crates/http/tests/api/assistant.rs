//! The booking assistant through `POST /api/v1/assistant/messages` and its page: a whole
//! booking by chat (search, hold, pay, list, refund) checked against the real state; the
//! refusals that must change nothing (more than is left, sold out, someone else's ticket,
//! anonymous booking, ambiguous or unknown messages); and abuse (long messages, floods, HTML,
//! someone else's conversation).

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, event_body, problem_kind, spawn_app};
use crate::pages::Browser;

/// A numbered event with a name, a "venue, city" and `seats` seats.
fn named(name: &str, venue: &str, seats: u32) -> Value {
    let mut body = event_body(json!({"kind": "numbered", "seats": seats}));
    body["name"] = json!(name);
    body["venue"]["name"] = json!(venue);
    body
}

/// Sends one message; returns the answer's JSON (asserting 200).
async fn say(app: &TestApp, token: Option<&str>, conversation: Option<&str>, text: &str) -> Value {
    let mut body = json!({"text": text});
    if let Some(c) = conversation {
        body["conversation_id"] = json!(c);
    }
    app.request(
        Method::POST,
        "/api/v1/assistant/messages",
        token,
        Some(&body),
    )
    .await
    .expect(200)
}

fn conversation(answer: &Value) -> String {
    answer["conversation_id"]
        .as_str()
        .expect("conversation_id")
        .to_owned()
}

fn action_results(answer: &Value) -> Vec<(String, String)> {
    answer["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap_or("").to_owned(),
                a["result"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Says "yes" to a pending confirmation when the engine asked for one (a choice sends it).
async fn confirm_if_asked(app: &TestApp, token: &str, c: &str, answer: Value) -> Value {
    if answer["actions"].as_array().is_some_and(|a| !a.is_empty()) {
        return answer;
    }
    let yes = answer["choices"]
        .as_array()
        .and_then(|c| c.first())
        .and_then(|c| c["send"].as_str())
        .unwrap_or("yes")
        .to_owned();
    say(app, Some(token), Some(c), &yes).await
}

#[tokio::test]
async fn a_whole_booking_by_chat_goes_through_the_real_shop() {
    let app = spawn_app().await;
    let beethoven = app
        .admin_event(&named("Beethoven Night", "Tonhalle, Düsseldorf", 20))
        .await;
    app.admin_event(&named("Arena Rock Concert", "Arena Nord, Köln", 20))
        .await;
    let buyer = app.new_user("chatbuyer", None).await;
    let token = buyer.token.as_str();

    // Anyone may search.
    let found = say(&app, None, None, "what's on in duesseldorf?").await;
    assert_eq!(found["intent"], "search", "{found}");
    let cards = found["cards"].as_array().expect("cards");
    assert!(
        cards.iter().any(|c| c["id"] == json!(beethoven)),
        "the Düsseldorf event is found: {found}"
    );
    assert!(
        cards.iter().all(|c| c["city"] == "Düsseldorf"),
        "only Düsseldorf: {found}"
    );

    // Booking: two tickets, held through the shop's hold (same rules, same log).
    let first = say(&app, Some(token), None, "2 tickets for the beethovn night").await;
    let c = conversation(&first);
    assert_eq!(first["intent"], "book", "{first}");
    let held = confirm_if_asked(&app, token, &c, first).await;
    assert_eq!(
        action_results(&held),
        vec![("hold".to_owned(), "held".to_owned())],
        "{held}"
    );
    assert_eq!(app.counts(beethoven).await["held"], json!(2));
    app.assert_invariants();

    // Paying asks first, then pays with the test card.
    let ask = say(&app, Some(token), Some(&c), "pay with the test card").await;
    assert!(
        ask["actions"].as_array().is_some_and(|a| a.is_empty()),
        "paying is confirmed first: {ask}"
    );
    let paid = say(&app, Some(token), Some(&c), "yes").await;
    assert_eq!(
        action_results(&paid),
        vec![("pay".to_owned(), "paid".to_owned())],
        "{paid}"
    );
    let tickets = app.tickets(Some(token)).await.expect(200);
    let tickets = tickets["tickets"].as_array().expect("tickets").clone();
    assert_eq!(tickets.len(), 2, "two tickets issued");
    assert_eq!(app.counts(beethoven).await["sold"], json!(2));

    // What did I buy: the same tickets.
    let mine = say(&app, Some(token), Some(&c), "what did I buy?").await;
    assert_eq!(mine["intent"], "my_tickets", "{mine}");
    assert_eq!(
        mine["cards"].as_array().map(Vec::len),
        Some(2),
        "both tickets listed: {mine}"
    );

    // Refund one by its number: asked, then done; the seat is back on sale.
    let ticket = tickets[0]["ticket_id"].as_u64().expect("ticket_id");
    let ask = say(
        &app,
        Some(token),
        Some(&c),
        &format!("refund my ticket {ticket}"),
    )
    .await;
    assert_eq!(ask["intent"], "refund", "{ask}");
    assert!(
        ask["actions"].as_array().is_some_and(|a| a.is_empty()),
        "refunds are confirmed first: {ask}"
    );
    let refunded = say(&app, Some(token), Some(&c), "yes").await;
    assert_eq!(
        action_results(&refunded),
        vec![("refund".to_owned(), "refunded".to_owned())],
        "{refunded}"
    );
    assert_eq!(app.counts(beethoven).await["sold"], json!(1));
    app.assert_invariants();
}

#[tokio::test]
async fn refusals_change_nothing() {
    let app = spawn_app().await;
    let small = app
        .admin_event(&named("Chamber Evening", "Tonhalle, Düsseldorf", 3))
        .await;
    let buyer = app.new_user("chatter", None).await;
    let other = app.new_user("otherbuyer", None).await;
    let token = buyer.token.as_str();

    // More than is left: a clear answer, no hold.
    let first = say(&app, Some(token), None, "5 tickets for the chamber evening").await;
    let c = conversation(&first);
    let answer = confirm_if_asked(&app, token, &c, first).await;
    let results = action_results(&answer);
    assert!(
        results.is_empty() || results[0].1 == "not_enough_left",
        "{answer}"
    );
    assert!(
        answer["text"].as_str().unwrap_or("").contains('3'),
        "{answer}"
    );
    assert_eq!(app.counts(small).await["held"], json!(0));

    // Sold out.
    for seat in 1..=3 {
        app.sell(small, &format!("c{seat}"), &format!("r{seat}"), Some(seat))
            .await
            .expect(201);
    }
    let first = say(&app, Some(token), None, "1 ticket for chamber evening").await;
    let c = conversation(&first);
    let answer = confirm_if_asked(&app, token, &c, first).await;
    assert_eq!(
        action_results(&answer),
        vec![("hold".to_owned(), "sold_out".to_owned())],
        "{answer}"
    );

    // Someone else's ticket: refused, and it stays valid.
    let event = app
        .admin_event(&named("Open Air", "Rheinwiesen, Düsseldorf", 10))
        .await;
    let hold = app
        .hold(
            Some(&other.token),
            event,
            &json!({"request_id": "h1", "quantity": 1}),
        )
        .await
        .expect(201);
    let hold_id = hold["hold_id"].as_u64().expect("hold_id");
    let order = app
        .checkout(Some(&other.token), hold_id, crate::helpers::CARD_OK)
        .await
        .expect(201);
    let theirs = order["tickets"][0]["ticket_id"]
        .as_u64()
        .or_else(|| order["tickets"][0].as_u64())
        .expect("ticket id");
    let ask = say(&app, Some(token), None, &format!("refund ticket {theirs}")).await;
    let c = conversation(&ask);
    let answer = confirm_if_asked(&app, token, &c, ask).await;
    assert_eq!(
        action_results(&answer),
        vec![("refund".to_owned(), "not_your_ticket".to_owned())],
        "{answer}"
    );
    assert_eq!(app.counts(event).await["sold"], json!(1), "still sold");

    // Anonymous booking: asked to log in, nothing held.
    let answer = say(&app, None, None, "2 tickets for open air").await;
    assert_eq!(answer["login_required"], json!(true), "{answer}");
    assert_eq!(app.counts(event).await["held"], json!(0));

    // Unknown: the help text, no action.
    let answer = say(&app, Some(token), None, "what's the weather like tomorrow?").await;
    assert_eq!(answer["intent"], "unknown", "{answer}");
    assert!(action_results(&answer).is_empty(), "{answer}");
    app.assert_invariants();
}

#[tokio::test]
async fn abuse_is_refused_clearly() {
    let app = spawn_app().await;
    let a = app.new_user("alice", None).await;
    let b = app.new_user("bob", None).await;

    // Too long, empty, control characters: 422 naming the field.
    let long = "a".repeat(501);
    for text in [long.as_str(), "   ", "hi\u{0}there"] {
        let reply = app
            .request(
                Method::POST,
                "/api/v1/assistant/messages",
                None,
                Some(&json!({"text": text})),
            )
            .await;
        let problem = reply.problem(422);
        assert_eq!(problem["field"], "text", "{problem}");
    }

    // Someone else's conversation is never continued: a new one starts.
    let hers = say(&app, Some(&a.token), None, "hello").await;
    let hers = conversation(&hers);
    let his = say(&app, Some(&b.token), Some(&hers), "hello").await;
    assert_ne!(
        conversation(&his),
        hers,
        "bob got a conversation of his own"
    );

    // A flood: the budget runs out, 429 with Retry-After.
    let c = conversation(&say(&app, None, None, "hi").await);
    let mut refused = None;
    for _ in 0..30 {
        let reply = app
            .request(
                Method::POST,
                "/api/v1/assistant/messages",
                None,
                Some(&json!({"text": "hi", "conversation_id": c})),
            )
            .await;
        if reply.status == 429 {
            refused = Some(reply);
            break;
        }
        assert_eq!(reply.status, 200);
    }
    let refused = refused.expect("a flood is refused within 30 messages");
    assert!(refused.header("retry-after").is_some());
    assert_eq!(problem_kind(&refused.problem(429)), "too_many_messages");

    // HTML in a message comes back as text: JSON as is, the page escaped.
    let mut browser = Browser::new(&app);
    let page = browser
        .post(
            "/assistant",
            &[("text", "<script>alert(1)</script> 2 tickets")],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.text);
    let location = page.location.expect("back to the conversation");
    let page = browser.get(&location).await;
    assert!(
        page.text
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
            || page.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "escaped: {}",
        page.text
    );
    assert!(!page.text.contains("<script>alert(1)"), "never raw");
}

#[tokio::test]
async fn without_javascript_the_page_keeps_the_conversation_through_a_login() {
    let app = spawn_app().await;
    let event = app
        .admin_event(&named("Quiet Harbour Evening", "Hafenhalle, Hamburg", 10))
        .await;
    app.new_user("pagebuyer", None).await;
    let mut browser = Browser::new(&app);

    // Anonymous: asked to log in, with a link back to this conversation.
    let page = browser
        .post(
            "/assistant",
            &[("text", "2 tickets for the quiet harbour evening")],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.text);
    let back = page.location.expect("the conversation");
    let page = browser.get(&back).await;
    let login = page
        .text
        .split("id=\"login-to-continue\"")
        .next()
        .and_then(|head| head.rsplit("href=\"").next())
        .and_then(|rest| rest.split('"').next())
        .expect("a log-in link")
        .replace("&#61;", "=")
        .replace("&#37;", "%")
        .replace("&amp;", "&");
    assert!(login.starts_with("/login?next="), "{login}");
    assert_eq!(
        app.counts(event).await["held"],
        json!(0),
        "nothing held yet"
    );

    // Logging in returns to the conversation; "continue" books.
    let next = back.split('#').next().unwrap_or(&back).to_owned();
    let page = browser
        .post(
            "/login",
            &[
                ("username", "pagebuyer"),
                ("password", crate::helpers::USER_PASSWORD),
                ("next", &next),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.text);
    assert_eq!(page.location.as_deref(), Some(next.as_str()));
    let conversation = next.split("c=").nth(1).expect("an id").to_owned();
    let page = browser
        .post("/assistant", &[("c", &conversation), ("text", "continue")])
        .await;
    assert_eq!(page.status, 303, "{}", page.text);
    let page = browser.get(page.location.as_deref().unwrap_or("/")).await;
    assert!(page.text.contains("Hold: 2"), "{}", page.text);
    assert_eq!(app.counts(event).await["held"], json!(2));

    // The page without an id shows the signed-in user's latest conversation.
    let page = browser.get("/assistant").await;
    assert!(page.text.contains("Quiet Harbour Evening"), "{}", page.text);
    app.assert_invariants();
}

#[tokio::test]
async fn a_past_event_and_an_expired_hold_are_answered_and_change_nothing() {
    let app = crate::helpers::spawn_app_with(tix_http::HttpConfig {
        hold_ttl_ms: 1_000,
        ..tix_http::HttpConfig::default()
    })
    .await;
    // An event that starts in two seconds (one in the past cannot be created) and then has.
    let mut past = named("Old Year Gala", "Admiralspalast, Berlin", 10);
    let soon_ms = time::OffsetDateTime::now_utc().unix_timestamp() + 2;
    let starts = time::OffsetDateTime::from_unix_timestamp(soon_ms).expect("a time");
    past["starts_at"] = json!(
        starts
            .format(&time::format_description::well_known::Rfc3339)
            .expect("RFC 3339")
    );
    let past = app.admin_event(&past).await;
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let soon = app
        .admin_event(&named("Quick Hold Show", "Quatsch Keller, Berlin", 10))
        .await;
    let buyer = app.new_user("latecomer", None).await;
    let token = buyer.token.as_str();

    // A past event is never booked.
    let answer = say(&app, Some(token), None, "2 tickets for the old year gala").await;
    assert!(
        action_results(&answer).is_empty() || action_results(&answer)[0].1 == "past_event",
        "{answer}"
    );
    assert_eq!(app.counts(past).await["held"], json!(0));

    // A hold that expired before paying: a clear answer, nothing charged or sold.
    let first = say(&app, Some(token), None, "1 ticket for the quick hold show").await;
    let c = conversation(&first);
    assert_eq!(
        action_results(&first),
        vec![("hold".to_owned(), "held".to_owned())],
        "{first}"
    );
    let ask = say(&app, Some(token), Some(&c), "pay").await;
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let answer = say(&app, Some(token), Some(&c), "yes").await;
    let results = action_results(&answer);
    assert!(
        results.is_empty() || matches!(results[0].1.as_str(), "hold_expired" | "no_open_hold"),
        "{ask}\n{answer}"
    );
    assert!(!answer["text"].as_str().unwrap_or("").is_empty());
    assert_eq!(app.counts(soon).await["sold"], json!(0));
    app.assert_invariants();
}
