//! Who may do what: a table of actors × endpoints with the expected status of each, checked
//! against a live app. Anonymous callers get 401 wherever a login is needed; other people's
//! holds and tickets are invisible (404) rather than forbidden; organizers manage only their own
//! events (403 on others'); only an admin grants roles, and sign-up cannot ask for one.

use serde_json::{Value, json};

use crate::helpers::{CARD_OK, Reply, TestApp, User, assert_problem_shape, numbered, spawn_app};

/// The callers in the table, in column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actor {
    Anonymous,
    AttendeeA,
    AttendeeB,
    OrganizerX,
    OrganizerY,
    Admin,
}

/// The columns of [`EXPECTED`].
const ACTORS: [Actor; 6] = [
    Actor::Anonymous,
    Actor::AttendeeA,
    Actor::AttendeeB,
    Actor::OrganizerX,
    Actor::OrganizerY,
    Actor::Admin,
];

/// The rows of [`EXPECTED`]; "X's event" is a small numbered event of organizer X, "A's hold"
/// and "A's ticket" belong to attendee A (the ticket was bought through a hold and checkout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    CreateEvent,
    EditXsEvent,
    PurchaseOnXsEvent,
    SalesOfXsEvent,
    AvailabilityOfXsEvent,
    PlaceHoldOnXsEvent,
    GetAsHold,
    DeleteAsHold,
    GetAsTicket,
    RefundAsTicket,
    CheckInAsTicket,
    GetMe,
    SetRoleOfB,
}

/// The expected status of each action for each actor.
#[rustfmt::skip]
const EXPECTED: [(Action, [u16; 6]); 13] = [
    //                               anon   A    B    X    Y  admin
    (Action::CreateEvent,           [401, 403, 403, 201, 201, 201]),
    (Action::EditXsEvent,           [401, 403, 403, 200, 403, 200]),
    (Action::PurchaseOnXsEvent,     [401, 403, 403, 201, 403, 201]),
    (Action::SalesOfXsEvent,        [401, 403, 403, 200, 403, 200]),
    (Action::AvailabilityOfXsEvent, [200, 200, 200, 200, 200, 200]),
    (Action::PlaceHoldOnXsEvent,    [401, 201, 201, 201, 201, 201]),
    // A hold is visible to its holder only, not even to an admin.
    (Action::GetAsHold,             [401, 200, 404, 404, 404, 404]),
    (Action::DeleteAsHold,          [401, 204, 404, 404, 404, 404]),
    // A ticket is visible to its owner, the event's organizer and admins.
    (Action::GetAsTicket,           [401, 200, 404, 200, 404, 200]),
    (Action::RefundAsTicket,        [401, 200, 404, 200, 404, 200]),
    // Attendees never check in, so B learns nothing it could not guess: 403, not 404.
    (Action::CheckInAsTicket,       [401, 403, 403, 200, 403, 200]),
    (Action::GetMe,                 [401, 200, 200, 200, 200, 200]),
    (Action::SetRoleOfB,            [401, 403, 403, 403, 403, 200]),
];

/// The app, its users and the objects the actions work on.
struct World {
    app: TestApp,
    a: User,
    b: User,
    x: User,
    y: User,
    /// X's event.
    event: u64,
    /// A's current hold on X's event.
    hold: u64,
    /// A's current active, not admitted ticket for X's event.
    ticket: u64,
    /// Makes request ids unique.
    next_request: u32,
}

impl World {
    async fn new() -> World {
        let app = spawn_app().await;
        let a = app.new_user("attendee-a", None).await;
        let b = app.new_user("attendee-b", None).await;
        let x = app.new_user("organizer-x", Some("organizer")).await;
        let y = app.new_user("organizer-y", Some("organizer")).await;
        let event = app.event_as(&x.token, &numbered(30)).await;
        let mut world = World {
            app,
            a,
            b,
            x,
            y,
            event,
            hold: 0,
            ticket: 0,
            next_request: 0,
        };
        world.hold = world.fresh_hold().await;
        world.ticket = world.fresh_ticket().await;
        world
    }

    fn token(&self, actor: Actor) -> Option<String> {
        match actor {
            Actor::Anonymous => None,
            Actor::AttendeeA => Some(self.a.token.clone()),
            Actor::AttendeeB => Some(self.b.token.clone()),
            Actor::OrganizerX => Some(self.x.token.clone()),
            Actor::OrganizerY => Some(self.y.token.clone()),
            Actor::Admin => Some(self.app.admin_token.clone()),
        }
    }

    fn request_id(&mut self) -> String {
        self.next_request += 1;
        format!("authz-{}", self.next_request)
    }

    /// Places a new one-seat hold of A on X's event.
    async fn fresh_hold(&mut self) -> u64 {
        let body = json!({"request_id": self.request_id(), "quantity": 1});
        let hold = self
            .app
            .hold(Some(&self.a.token), self.event, &body)
            .await
            .expect(201);
        hold["hold_id"].as_u64().expect("hold_id")
    }

    /// Buys A a new ticket for X's event through a hold and checkout.
    async fn fresh_ticket(&mut self) -> u64 {
        let hold_id = self.fresh_hold().await;
        let order = self
            .app
            .checkout(Some(&self.a.token), hold_id, CARD_OK)
            .await
            .expect(201);
        order["tickets"][0].as_u64().expect("ticket id")
    }

    /// Performs one action as one actor.
    async fn act(&mut self, actor: Actor, action: Action) -> Reply {
        let token = self.token(actor);
        let token = token.as_deref();
        let app = &self.app;
        match action {
            Action::CreateEvent => app.create_event(token, &numbered(2)).await,
            Action::EditXsEvent => {
                let version = app.get_event(self.event).await.expect(200)["version"].clone();
                let mut body = numbered(30);
                body.as_object_mut().expect("object").remove("inventory");
                body["version"] = version;
                body["name"] = json!(format!("Edited by {actor:?}"));
                app.edit_event(token, self.event, &body).await
            }
            Action::PurchaseOnXsEvent => {
                let body =
                    json!({"client_id": format!("{actor:?}"), "request_id": self.request_id()});
                self.app.purchase(token, self.event, &body).await
            }
            Action::SalesOfXsEvent => app.sales(token, self.event).await,
            Action::AvailabilityOfXsEvent => app.availability(self.event).await,
            Action::PlaceHoldOnXsEvent => {
                let body = json!({"request_id": self.request_id(), "quantity": 1});
                self.app.hold(token, self.event, &body).await
            }
            Action::GetAsHold => app.get_hold(token, self.hold).await,
            Action::DeleteAsHold => app.release_hold(token, self.hold).await,
            Action::GetAsTicket => app.get_ticket(token, self.ticket).await,
            Action::RefundAsTicket => app.refund(token, self.ticket).await,
            Action::CheckInAsTicket => app.check_in(token, self.ticket).await,
            Action::GetMe => app.me(token).await,
            Action::SetRoleOfB => app.set_role(token, self.b.id, "attendee").await,
        }
    }

    /// Undoes or replaces what a successful action used up, so the next actor finds the same
    /// world: a placed hold is released, a released hold or a refunded or admitted ticket is
    /// replaced by a fresh one.
    async fn restore(&mut self, actor: Actor, action: Action, reply: &Reply) {
        if !(200..300).contains(&reply.status) {
            return;
        }
        match action {
            Action::PlaceHoldOnXsEvent => {
                let hold_id = reply.json()["hold_id"].as_u64().expect("hold_id");
                let token = self.token(actor);
                self.app
                    .release_hold(token.as_deref(), hold_id)
                    .await
                    .expect(204);
            }
            Action::DeleteAsHold => self.hold = self.fresh_hold().await,
            Action::RefundAsTicket | Action::CheckInAsTicket => {
                self.ticket = self.fresh_ticket().await;
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn the_authorization_matrix_holds() {
    // Runs every action of EXPECTED as every actor and compares each status with the table.
    let mut world = World::new().await;
    let mut mismatches = Vec::new();
    for (action, statuses) in EXPECTED {
        for (actor, expected) in ACTORS.into_iter().zip(statuses) {
            let reply = world.act(actor, action).await;
            if reply.status != expected {
                mismatches.push(format!(
                    "{action:?} as {actor:?}: expected {expected}, got {} {}",
                    reply.status, reply.text
                ));
            } else if reply.status >= 400 {
                assert_problem_shape(&reply);
            }
            world.restore(actor, action, &reply).await;
        }
    }
    assert!(
        mismatches.is_empty(),
        "authorization mismatches:\n{}",
        mismatches.join("\n")
    );
    world.app.assert_invariants();

    // The refusals changed nothing: Y's, A's and B's attempts left X's event as X and the
    // admin edited it, and B is still an attendee.
    let event = world.app.get_event(world.event).await.expect(200);
    assert_eq!(event["name"], json!("Edited by Admin"));
    assert_eq!(event["organizer_id"], json!(world.x.id));
    let me = world.app.me(Some(&world.b.token)).await.expect(200);
    assert_eq!(me["role"], json!("attendee"));
    let sales = world.app.sales_lines(world.event).await;
    let box_office: Vec<&Value> = sales.iter().filter(|l| l["seat"].is_number()).collect();
    let buyers: Vec<&str> = box_office
        .iter()
        .filter_map(|l| l["client_id"].as_str())
        .collect();
    assert!(
        buyers.contains(&"OrganizerX") && buyers.contains(&"Admin"),
        "{buyers:?}"
    );
    assert!(
        !buyers
            .iter()
            .any(|b| ["AttendeeA", "AttendeeB", "OrganizerY"].contains(b))
    );
}

#[tokio::test]
async fn roles_come_from_an_admin_never_from_the_request() {
    // Asks for roles via signup and self-promotion (refused), then has an admin grant staff.
    let app = spawn_app().await;
    for role in ["admin", "staff", "superuser"] {
        let reply = app.signup("climber", "climber-pass-1", Some(role)).await;
        let problem = reply.problem(422);
        assert_eq!(problem["field"], json!("role"), "{problem}");
        app.login("climber", "climber-pass-1").await.problem(401);
    }
    let created = app
        .signup("climber", "climber-pass-1", None)
        .await
        .expect(201);
    assert_eq!(created["role"], json!("attendee"));
    let organizer = app
        .signup("planner", "planner-pass-1", Some("organizer"))
        .await
        .expect(201);
    assert_eq!(organizer["role"], json!("organizer"));

    let attendee = app.new_user("attendee", None).await;
    let planner = app.new_user("planner-2", Some("organizer")).await;
    for user in [&attendee, &planner] {
        let problem = app
            .set_role(Some(&user.token), user.id, "admin")
            .await
            .problem(403);
        assert_eq!(
            problem["type"],
            json!("https://tix.invalid/problems/forbidden")
        );
        let me = app.me(Some(&user.token)).await.expect(200);
        assert_ne!(me["role"], json!("admin"));
    }
    let problem = app
        .set_role(Some(&app.admin_token), attendee.id, "emperor")
        .await
        .problem(422);
    assert_eq!(problem["field"], json!("role"));

    let event = app.event_as(&planner.token, &numbered(2)).await;
    let buyer = app.new_user("buyer", None).await;
    let ticket = app.buy_seat(&buyer.token, event, 1).await;
    app.check_in(Some(&attendee.token), ticket)
        .await
        .problem(403);
    let granted = app
        .set_role(Some(&app.admin_token), attendee.id, "staff")
        .await
        .expect(200);
    assert_eq!(
        granted,
        json!({"id": attendee.id, "username": "attendee", "role": "staff"})
    );
    assert_eq!(
        app.me(Some(&attendee.token)).await.expect(200)["role"],
        json!("staff")
    );
    app.check_in(Some(&attendee.token), ticket)
        .await
        .expect(200);
}

// The only admin cannot be demoted, not even by itself (409 `last_admin`), and stays admin;
// the Authorization scheme is case-insensitive (`bearer` works like `Bearer`).
#[tokio::test]
async fn the_last_admin_stays_admin_and_the_bearer_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    let me = reqwest::Client::new()
        .get(format!("{}/api/v1/me", app.base_url))
        .header("authorization", format!("bearer {}", app.admin_token))
        .send()
        .await
        .expect("request sent");
    assert_eq!(me.status(), 200, "lower-case bearer refused");
    let me: Value = me.json().await.expect("json");
    let admin_id = me["id"].as_u64().expect("id");
    assert_eq!(me["role"], "admin");

    let refused = app
        .set_role(Some(&app.admin_token), admin_id, "organizer")
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    let problem = assert_problem_shape(&refused);
    assert_eq!(problem["type"], "https://tix.invalid/problems/last_admin");
    let me = app.request(
        reqwest::Method::GET,
        "/api/v1/me",
        Some(&app.admin_token),
        None,
    );
    assert_eq!(me.await.expect(200)["role"], "admin");

    // With a second admin, the first may step down.
    let second = app.new_user("second-admin", None).await;
    app.set_role(Some(&app.admin_token), second.id, "admin")
        .await
        .expect(200);
    let stepped_down = app.set_role(Some(&app.admin_token), admin_id, "organizer");
    assert_eq!(stepped_down.await.expect(200)["role"], "organizer");
}
