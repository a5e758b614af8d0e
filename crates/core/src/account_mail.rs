//! Email addresses of accounts and password resets: the state behind "send me my tickets" and
//! "forgot password?".
//!
//! Kept in one tagged section of [`Extensions`](crate::extensions::Extensions) (tag 2), not in
//! [`User`](crate::state::User), whose encoding is positional and frozen. An address is optional
//! and need not be unique (two accounts of one family may share one); a reset is stored under the
//! SHA-256 of its token — the token itself exists only in the mail — and lasts until its expiry
//! by log time, its use, or a newer reset of the same account (one open reset per account). Like
//! everything in the core, nothing here reads a clock or draws a token: both arrive in commands.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ids::UserId;

/// The longest email address accepted, in bytes (RFC 5321's path limit).
pub const EMAIL_BYTES_MAX: usize = 254;

/// The most open password resets the state keeps; past it the one expiring first goes.
pub const PASSWORD_RESETS_MAX: usize = 10_000;

/// A password reset that has been mailed and not yet used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordReset {
    /// Whose password the token may set.
    pub user_id: UserId,
    /// When the token stops working, by log time.
    pub expires_at_ms: u64,
}

/// Email addresses and open password resets. `emails` and `resets` are encoded; the indexes are
/// rebuilt from them when a state is read ([`AccountMail::rebuild`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountMail {
    /// Each account's address, as the account holder typed it (trimmed at the edge).
    emails: BTreeMap<UserId, String>,
    /// Open resets by the hex SHA-256 of their token.
    resets: BTreeMap<String, PasswordReset>,
    /// Accounts by address, ASCII-lower-cased, for "forgot password?" by address.
    #[serde(skip)]
    by_email: BTreeSet<(String, UserId)>,
    /// Open resets by expiry, soonest first.
    #[serde(skip)]
    reset_expiry: BTreeSet<(u64, String)>,
    /// The open reset of each account.
    #[serde(skip)]
    reset_by_user: BTreeMap<UserId, String>,
}

/// Returns the key an address is looked up by: ASCII-lower-cased (the domain is case-blind and
/// in practice so is every mailbox).
pub fn email_key(email: &str) -> String {
    email.to_ascii_lowercase()
}

impl AccountMail {
    /// Rebuilds the indexes from the encoded collections (after decoding).
    pub(crate) fn rebuild(&mut self) {
        self.by_email = self
            .emails
            .iter()
            .map(|(id, email)| (email_key(email), *id))
            .collect();
        self.reset_expiry = self
            .resets
            .iter()
            .map(|(hash, r)| (r.expires_at_ms, hash.clone()))
            .collect();
        self.reset_by_user = self
            .resets
            .iter()
            .map(|(hash, r)| (r.user_id, hash.clone()))
            .collect();
    }

    /// Returns true when no account has an address and no reset is open.
    pub fn is_empty(&self) -> bool {
        self.emails.is_empty() && self.resets.is_empty()
    }

    /// Returns an account's address.
    pub fn email(&self, user_id: UserId) -> Option<&str> {
        self.emails.get(&user_id).map(String::as_str)
    }

    /// Returns up to `limit` accounts with this address (ignoring ASCII case), in id order.
    pub fn users_with_email(&self, email: &str, limit: usize) -> Vec<UserId> {
        let key = email_key(email);
        self.by_email
            .range((key.clone(), UserId(0))..)
            .take_while(|(k, _)| *k == key)
            .take(limit)
            .map(|(_, id)| *id)
            .collect()
    }

    /// Returns the open reset stored under a token hash.
    pub fn reset(&self, token_hash: &str) -> Option<&PasswordReset> {
        self.resets.get(token_hash)
    }

    /// Returns the account's open reset, if it has one.
    pub fn open_reset_of(&self, user_id: UserId) -> Option<&PasswordReset> {
        self.reset_by_user
            .get(&user_id)
            .and_then(|hash| self.resets.get(hash))
    }

    /// Sets or clears an account's address (the caller checked the account exists).
    pub(crate) fn set_email(&mut self, user_id: UserId, email: Option<&str>) {
        if let Some(old) = self.emails.remove(&user_id) {
            self.by_email.remove(&(email_key(&old), user_id));
        }
        if let Some(email) = email {
            self.emails.insert(user_id, email.to_owned());
            self.by_email.insert((email_key(email), user_id));
        }
    }

    /// Opens a reset, replacing the account's earlier one; past [`PASSWORD_RESETS_MAX`] the
    /// reset expiring first is dropped.
    pub(crate) fn open_reset(&mut self, token_hash: &str, user_id: UserId, expires_at_ms: u64) {
        if let Some(old) = self.reset_by_user.get(&user_id).cloned() {
            self.remove_reset(&old);
        }
        self.remove_reset(token_hash);
        while self.resets.len() >= PASSWORD_RESETS_MAX {
            let (_, first) = self
                .reset_expiry
                .first()
                .cloned()
                .expect("resets not empty");
            self.remove_reset(&first);
        }
        let reset = PasswordReset {
            user_id,
            expires_at_ms,
        };
        self.resets.insert(token_hash.to_owned(), reset);
        self.reset_expiry
            .insert((expires_at_ms, token_hash.to_owned()));
        self.reset_by_user.insert(user_id, token_hash.to_owned());
    }

    /// Removes a reset (used or replaced) and returns it.
    pub(crate) fn remove_reset(&mut self, token_hash: &str) -> Option<PasswordReset> {
        let reset = self.resets.remove(token_hash)?;
        self.reset_expiry
            .remove(&(reset.expires_at_ms, token_hash.to_owned()));
        if self.reset_by_user.get(&reset.user_id).map(String::as_str) == Some(token_hash) {
            self.reset_by_user.remove(&reset.user_id);
        }
        Some(reset)
    }

    /// Drops every reset whose expiry is at or before `now_ms`.
    pub(crate) fn expire_resets(&mut self, now_ms: u64) {
        while let Some((at, hash)) = self.reset_expiry.first().cloned() {
            if at > now_ms {
                break;
            }
            self.remove_reset(&hash);
        }
    }

    /// Checks that the indexes agree with the collections, that every address and reset belongs
    /// to an account (`user_exists`), and that no reset outlived its expiry at `now_ms`.
    pub(crate) fn check(
        &self,
        now_ms: u64,
        user_exists: impl Fn(UserId) -> bool,
    ) -> Result<(), String> {
        let mut rebuilt = self.clone();
        rebuilt.rebuild();
        if rebuilt.by_email != self.by_email
            || rebuilt.reset_expiry != self.reset_expiry
            || rebuilt.reset_by_user != self.reset_by_user
        {
            return Err("account mail indexes disagree with addresses and resets".into());
        }
        if self.reset_by_user.len() != self.resets.len() {
            return Err("an account has more than one open password reset".into());
        }
        if self.resets.len() > PASSWORD_RESETS_MAX {
            return Err(format!("{} open password resets", self.resets.len()));
        }
        if let Some((id, _)) = self.emails.iter().find(|(id, _)| !user_exists(**id)) {
            return Err(format!("address of unknown account {id}"));
        }
        if let Some(email) = self.emails.values().find(|e| !email_is_valid(e)) {
            return Err(format!("invalid address stored: {email:?}"));
        }
        if let Some((_, r)) = self.resets.iter().find(|(_, r)| !user_exists(r.user_id)) {
            return Err(format!("password reset of unknown account {}", r.user_id));
        }
        if let Some((at, _)) = self.reset_expiry.first().filter(|(at, _)| *at <= now_ms) {
            return Err(format!("password reset outlived its expiry {at}"));
        }
        Ok(())
    }
}

/// Returns true for an address the core accepts: 3 to [`EMAIL_BYTES_MAX`] bytes, exactly one
/// `@` with something on each side, no whitespace or control characters. (Deliverability is the
/// mail server's business; this keeps garbage and header injection out of the state.)
pub fn email_is_valid(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    (3..=EMAIL_BYTES_MAX).contains(&email.len())
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_control() || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The address rule from both sides: the longest accepted and one byte over, one `@` only,
    /// no control or space characters.
    #[test]
    fn email_rule() {
        assert!(email_is_valid("a@b"));
        let longest = format!("{}@example.org", "a".repeat(EMAIL_BYTES_MAX - 12));
        assert_eq!(longest.len(), EMAIL_BYTES_MAX);
        assert!(email_is_valid(&longest));
        assert!(!email_is_valid(&format!("a{longest}")));
        for bad in [
            "",
            "ab",
            "a@",
            "@b",
            "a@b@c",
            "a b@c",
            "a@b\r\nBcc: x@y",
            "a\u{7}@b",
        ] {
            assert!(!email_is_valid(bad), "{bad:?}");
        }
    }

    /// One open reset per account: a newer reset replaces the older, and expiry drops it.
    #[test]
    fn resets_replace_and_expire() {
        let mut m = AccountMail::default();
        m.open_reset("h1", UserId(1), 100);
        m.open_reset("h2", UserId(1), 200);
        m.open_reset("h3", UserId(2), 150);
        assert!(m.reset("h1").is_none());
        assert_eq!(m.reset("h2").map(|r| r.user_id), Some(UserId(1)));
        m.expire_resets(150);
        assert!(m.reset("h3").is_none());
        assert!(m.reset("h2").is_some());
        m.check(150, |_| true).expect("consistent");
        m.expire_resets(200);
        assert!(m.resets.is_empty() && m.reset_by_user.is_empty());
    }

    /// Addresses are found ignoring case, several accounts may share one.
    #[test]
    fn lookup_by_address() {
        let mut m = AccountMail::default();
        m.set_email(UserId(2), Some("Ann@Example.org"));
        m.set_email(UserId(1), Some("ann@example.org"));
        m.set_email(UserId(3), Some("bob@example.org"));
        assert_eq!(
            m.users_with_email("ANN@example.org", 5),
            vec![UserId(1), UserId(2)]
        );
        m.set_email(UserId(2), None);
        assert_eq!(m.users_with_email("ann@example.org", 5), vec![UserId(1)]);
        m.check(0, |_| true).expect("consistent");
    }
}
