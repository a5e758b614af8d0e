//! Email addresses and password resets (`SetEmail`, `CreatePasswordReset`, `ResetPassword`):
//! example tests of each rule, and a property test that drives random sequences of them, sessions
//! and clock steps against a small model, checking the invariants after every batch and a
//! snapshot round trip (`State::encode`/`decode`) in the middle.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tix_core::{
    AccountRejection, Batch, Command, Limits, MemoryHistory, Outcome, Role, State, UserId,
};

const START_MS: u64 = 1_700_000_000_000;
const USERS: u64 = 3;

fn run(state: &mut State, time_ms: u64, commands: Vec<Command>) -> Vec<Outcome> {
    let history = MemoryHistory::default();
    let outcomes = state.apply_batch(&Batch { time_ms, commands }, &history);
    assert!(
        !state.has_pending_changes(),
        "account changes touch no history"
    );
    state
        .check_invariants(&history)
        .expect("invariants hold after every batch");
    outcomes
}

/// A state with `USERS` attendee accounts, ids 1..=USERS.
fn world() -> State {
    let mut state = State::new(Limits::default());
    let users = (1..=USERS)
        .map(|n| Command::CreateUser {
            username: format!("user{n}"),
            password_hash: "old".into(),
            role: Role::Attendee,
        })
        .collect();
    let outcomes = run(&mut state, START_MS, users);
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::User(Ok(_)))));
    state
}

fn one(state: &mut State, time_ms: u64, command: Command) -> Outcome {
    run(state, time_ms, vec![command]).remove(0)
}

/// An address is set, replaced, found by address ignoring case, and cleared; a bad address and an
/// unknown account are refused.
#[test]
fn set_email_rules() {
    let mut s = world();
    let set = |user: u64, email: Option<&str>| Command::SetEmail {
        user_id: UserId(user),
        email: email.map(str::to_owned),
    };
    assert_eq!(
        one(&mut s, START_MS, set(1, Some("Ann@Example.org"))),
        Outcome::Account(Ok(UserId(1)))
    );
    assert_eq!(s.account_mail().email(UserId(1)), Some("Ann@Example.org"));
    assert_eq!(
        s.account_mail().users_with_email("ann@example.ORG", 5),
        vec![UserId(1)]
    );
    assert_eq!(
        one(&mut s, START_MS, set(1, Some("a@b\r\nBcc: x@y"))),
        Outcome::Account(Err(AccountRejection::BadEmail))
    );
    assert_eq!(
        one(&mut s, START_MS, set(99, Some("x@y.z"))),
        Outcome::Account(Err(AccountRejection::UnknownUser))
    );
    assert_eq!(s.account_mail().email(UserId(1)), Some("Ann@Example.org"));
    one(&mut s, START_MS, set(1, None));
    assert_eq!(s.account_mail().email(UserId(1)), None);
    assert!(
        s.account_mail()
            .users_with_email("ann@example.org", 5)
            .is_empty()
    );
}

/// A reset works once, sets the password, ends the account's sessions (not others'), and is gone
/// after its expiry by log time.
#[test]
fn reset_password_once() {
    let mut s = world();
    let session = |hash: &str, user: u64| Command::CreateSession {
        token_hash: hash.into(),
        user_id: UserId(user),
        expires_at_ms: START_MS + 3_600_000,
    };
    run(&mut s, START_MS, vec![session("s1", 1), session("s2", 2)]);
    let open = Command::CreatePasswordReset {
        token_hash: "r1".into(),
        user_id: UserId(1),
        expires_at_ms: START_MS + 1_800_000,
    };
    assert_eq!(one(&mut s, START_MS, open), Outcome::Account(Ok(UserId(1))));
    let reset = Command::ResetPassword {
        token_hash: "r1".into(),
        password_hash: "new".into(),
    };
    assert_eq!(
        one(&mut s, START_MS + 1, reset.clone()),
        Outcome::Account(Ok(UserId(1)))
    );
    assert_eq!(
        s.user(UserId(1)).map(|u| u.password_hash.as_str()),
        Some("new")
    );
    assert!(
        s.session("s1", START_MS).is_none(),
        "the account's sessions end"
    );
    assert!(
        s.session("s2", START_MS).is_some(),
        "other accounts keep theirs"
    );
    assert_eq!(
        one(&mut s, START_MS + 2, reset),
        Outcome::Account(Err(AccountRejection::UnknownResetToken))
    );

    let expiring = Command::CreatePasswordReset {
        token_hash: "r2".into(),
        user_id: UserId(2),
        expires_at_ms: START_MS + 1_000,
    };
    one(&mut s, START_MS + 2, expiring);
    let late = Command::ResetPassword {
        token_hash: "r2".into(),
        password_hash: "late".into(),
    };
    assert_eq!(
        one(&mut s, START_MS + 1_000, late),
        Outcome::Account(Err(AccountRejection::UnknownResetToken))
    );
    assert_eq!(
        s.user(UserId(2)).map(|u| u.password_hash.as_str()),
        Some("old")
    );
    let past = Command::CreatePasswordReset {
        token_hash: "r3".into(),
        user_id: UserId(2),
        expires_at_ms: START_MS,
    };
    assert_eq!(
        one(&mut s, START_MS + 1_000, past),
        Outcome::Account(Err(AccountRejection::ResetExpired))
    );
}

/// A newer reset of an account replaces the older one: the older link stops working.
#[test]
fn newer_reset_replaces_older() {
    let mut s = world();
    let open = |hash: &str| Command::CreatePasswordReset {
        token_hash: hash.into(),
        user_id: UserId(3),
        expires_at_ms: START_MS + 60_000,
    };
    run(&mut s, START_MS, vec![open("a"), open("b")]);
    let use_token = |hash: &str| Command::ResetPassword {
        token_hash: hash.into(),
        password_hash: "p".into(),
    };
    assert_eq!(
        one(&mut s, START_MS, use_token("a")),
        Outcome::Account(Err(AccountRejection::UnknownResetToken))
    );
    assert_eq!(
        one(&mut s, START_MS, use_token("b")),
        Outcome::Account(Ok(UserId(3)))
    );
}

/// A state without addresses encodes exactly as before the section existed (no section written),
/// and one with them survives a round trip.
#[test]
fn encoding_round_trip() {
    let mut s = world();
    let empty = s.encode();
    let decoded = State::decode(&empty).expect("decodes");
    assert_eq!(decoded.digest(), s.digest());
    one(
        &mut s,
        START_MS,
        Command::SetEmail {
            user_id: UserId(2),
            email: Some("b@example.org".into()),
        },
    );
    assert!(s.encode().len() > empty.len());
    let decoded = State::decode(&s.encode()).expect("decodes");
    assert_eq!(decoded, s);
    assert_eq!(
        decoded.account_mail().users_with_email("B@example.org", 2),
        vec![UserId(2)]
    );
}

/// One step of the property test.
#[derive(Debug, Clone)]
enum Step {
    SetEmail(u64, Option<u8>),
    Open(u8, u64, u64),
    Reset(u8),
    Session(u8, u64),
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1..=USERS + 1, proptest::option::of(0..4u8)).prop_map(|(u, e)| Step::SetEmail(u, e)),
        (0..6u8, 1..=USERS + 1, 0..120_000u64).prop_map(|(t, u, ttl)| Step::Open(t, u, ttl)),
        (0..6u8).prop_map(Step::Reset),
        (0..6u8, 1..=USERS).prop_map(|(t, u)| Step::Session(t, u)),
        (0..90_000u64).prop_map(Step::Wait),
    ]
}

/// The model: addresses, open resets (token → user, expiry), sessions (token → user).
#[derive(Default)]
struct Model {
    emails: BTreeMap<u64, String>,
    resets: BTreeMap<String, (u64, u64)>,
    sessions: BTreeMap<String, u64>,
    passwords: BTreeMap<u64, String>,
}

const ADDRESSES: [&str; 4] = ["a@x.org", "A@X.org", "b@y.org", "bad address"];

proptest! {
    /// Random address changes, resets, sessions and waits agree with the model at every step;
    /// invariants hold after each batch; halfway, the state goes through its encoding.
    #[test]
    fn account_mail_model(steps in proptest::collection::vec(step(), 1..60)) {
        let mut s = world();
        let mut m = Model::default();
        let mut now = START_MS;
        let half = steps.len() / 2;
        for (i, step) in steps.into_iter().enumerate() {
            if i == half {
                s = State::decode(&s.encode()).expect("decodes");
            }
            // Expiry by log time, as the state does at the start of a batch.
            let expire = |m: &mut Model, now: u64| m.resets.retain(|_, (_, at)| *at > now);
            match step {
                Step::Wait(ms) => {
                    now += ms;
                    run(&mut s, now, vec![]);
                    expire(&mut m, now);
                }
                Step::SetEmail(user, email) => {
                    let email = email.map(|e| ADDRESSES[usize::from(e)].to_owned());
                    let got = one(&mut s, now, Command::SetEmail { user_id: UserId(user), email: email.clone() });
                    let want = if user > USERS {
                        Err(AccountRejection::UnknownUser)
                    } else if email.as_deref() == Some("bad address") {
                        Err(AccountRejection::BadEmail)
                    } else {
                        match email { Some(e) => { m.emails.insert(user, e); } None => { m.emails.remove(&user); } }
                        Ok(UserId(user))
                    };
                    prop_assert_eq!(got, Outcome::Account(want));
                }
                Step::Open(token, user, ttl) => {
                    let hash = format!("r{token}");
                    let got = one(&mut s, now, Command::CreatePasswordReset { token_hash: hash.clone(), user_id: UserId(user), expires_at_ms: now + ttl });
                    let want = if user > USERS {
                        Err(AccountRejection::UnknownUser)
                    } else if ttl == 0 {
                        Err(AccountRejection::ResetExpired)
                    } else {
                        m.resets.retain(|h, (u, _)| *u != user && *h != hash);
                        m.resets.insert(hash, (user, now + ttl));
                        Ok(UserId(user))
                    };
                    prop_assert_eq!(got, Outcome::Account(want));
                }
                Step::Reset(token) => {
                    let hash = format!("r{token}");
                    let password = format!("p{i}");
                    let got = one(&mut s, now, Command::ResetPassword { token_hash: hash.clone(), password_hash: password.clone() });
                    let want = match m.resets.remove(&hash) {
                        Some((user, _)) => {
                            m.passwords.insert(user, password);
                            m.sessions.retain(|_, u| *u != user);
                            Ok(UserId(user))
                        }
                        None => Err(AccountRejection::UnknownResetToken),
                    };
                    prop_assert_eq!(got, Outcome::Account(want));
                }
                Step::Session(token, user) => {
                    let hash = format!("s{token}");
                    one(&mut s, now, Command::CreateSession { token_hash: hash.clone(), user_id: UserId(user), expires_at_ms: now + 86_400_000 * 365 });
                    m.sessions.insert(hash, user);
                }
            }
            for user in 1..=USERS {
                prop_assert_eq!(s.account_mail().email(UserId(user)), m.emails.get(&user).map(String::as_str));
                let password = m.passwords.get(&user).map_or("old", String::as_str);
                prop_assert_eq!(s.user(UserId(user)).map(|u| u.password_hash.as_str()), Some(password));
            }
            for token in 0..6u8 {
                let hash = format!("r{token}");
                let open = s.account_mail().reset(&hash).map(|r| (r.user_id.0, r.expires_at_ms));
                prop_assert_eq!(open, m.resets.get(&hash).copied());
                let session = s.session(&format!("s{token}"), now).map(|x| x.user_id.0);
                prop_assert_eq!(session, m.sessions.get(&format!("s{token}")).copied());
            }
            let with_a: Vec<u64> = m.emails.iter().filter(|(_, e)| e.eq_ignore_ascii_case("a@x.org")).map(|(u, _)| *u).collect();
            let found: Vec<u64> = s.account_mail().users_with_email("a@X.ORG", 10).iter().map(|u| u.0).collect();
            prop_assert_eq!(found, with_a);
        }
    }
}
