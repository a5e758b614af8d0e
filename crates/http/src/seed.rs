//! First-start setup: the `admin` account and the demo events, created through the log like
//! any other change so that every replica has them.

use rand::RngExt;
use tix_core::{EventDetails, InventorySpec, Role, SectionSpec, Venue};

use crate::AppState;
use crate::error::ApiError;

/// The admin's username.
pub const ADMIN_USERNAME: &str = "admin";
/// The demo organizer's username.
pub const DEMO_ORGANIZER: &str = "demo-organizer";

/// The time zone of the demo events (their venues are in Düsseldorf).
pub const DEMO_ZONE: &str = "Europe/Berlin";

/// Creates the `admin` account if it does not exist. Returns the password when one was
/// generated (so it can be printed once); `None` when the account existed or the password came
/// from the caller.
pub async fn ensure_admin(
    state: &AppState,
    password: Option<String>,
) -> Result<Option<String>, ApiError> {
    if state
        .node
        .shared
        .read()
        .user_by_name(ADMIN_USERNAME)
        .is_some()
    {
        return Ok(None);
    }
    let (password, generated) = match password {
        Some(p) => (p, false),
        None => (generate_password(), true),
    };
    crate::auth::create_user(state, ADMIN_USERNAME, &password, Role::Admin).await?;
    Ok(generated.then_some(password))
}

/// Returns a random 20-character password of letters and digits.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The demo arena's 20,000 seats: four floor blocks in front (800 seats each, the dearest),
/// eight lower-tier blocks (1,000 each) and eleven upper-tier blocks (800 each), best first.
pub fn arena_sections() -> Vec<SectionSpec> {
    let block = |name: String, rows, seats_per_row, price_cents| SectionSpec {
        name,
        rows,
        seats_per_row,
        price_cents,
    };
    let floor = ["A", "B", "C", "D"].map(|b| block(format!("Floor {b}"), 20, 40, 12_900));
    let lower = (101..=108).map(|n| block(format!("Block {n}"), 20, 50, 8_900));
    let upper = (201..=211).map(|n| block(format!("Block {n}"), 20, 40, 5_900));
    floor.into_iter().chain(lower).chain(upper).collect()
}

/// Creates the demo organizer and events when there are no events yet: a general-admission
/// festival, a numbered concert with a seat layout and an arena in named blocks. Returns how
/// many events were created.
pub async fn ensure_demo_data(state: &AppState, now_ms: u64) -> Result<usize, ApiError> {
    if state.node.shared.read().events().next().is_some() {
        return Ok(0);
    }
    let organizer = state
        .node
        .shared
        .read()
        .user_by_name(DEMO_ORGANIZER)
        .map(|u| u.id);
    let organizer = match organizer {
        Some(id) => id,
        None => {
            let password = generate_password();
            crate::auth::create_user(state, DEMO_ORGANIZER, &password, Role::Organizer).await?
        }
    };
    let day_ms: i64 = 86_400_000;
    let now = now_ms as i64;
    let demos = [
        (
            "Summer Open Air",
            "A day of indie bands on the river meadow. General admission; bring a blanket.",
            now + 30 * day_ms,
            Venue {
                name: "Rheinwiesen, Düsseldorf".into(),
                lat: 51.2344,
                lon: 6.7630,
            },
            4_500,
            InventorySpec::Unnumbered { capacity: 5_000 },
        ),
        (
            "Chamber Orchestra: Beethoven Night",
            "Symphony No. 7 and the Violin Concerto. Numbered seats; pick yours on the seat map.",
            now + 45 * day_ms,
            Venue {
                name: "Tonhalle, Düsseldorf".into(),
                lat: 51.2316,
                lon: 6.7731,
            },
            6_900,
            InventorySpec::Numbered {
                seats: 300,
                seats_per_row: Some(20),
                blocked: vec![1, 20],
            },
        ),
        (
            "Flash Sale Arena Concert",
            "The benchmark concert: 20,000 numbered seats in 23 blocks that sell out in seconds.",
            now + 60 * day_ms,
            Venue {
                name: "Merkur Spiel-Arena, Düsseldorf".into(),
                lat: 51.2617,
                lon: 6.7331,
            },
            5_900,
            InventorySpec::Sections {
                sections: arena_sections(),
                blocked: vec![],
            },
        ),
    ];
    let count = demos.len();
    for (name, description, starts_at_ms, venue, price_cents, inventory) in demos {
        let details = EventDetails {
            name: name.into(),
            description: description.into(),
            starts_at_ms,
            venue,
            price_cents,
            currency: "EUR".into(),
            refundable: true,
            per_customer_max: None,
        };
        crate::events::create_event(state, organizer, details, inventory, DEMO_ZONE).await?;
    }
    Ok(count)
}
