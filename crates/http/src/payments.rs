//! Payment providers. Checkout is a saga: the hold reserves inventory, the provider charges, the
//! confirm command turns the hold into an order; a declined charge releases the hold, and a
//! charge whose confirm fails (the hold expired meanwhile) is refunded.
//!
//! [`TestPayments`] is the built-in provider for demos and tests. Its card numbers:
//! `4242 4242 4242 4242` succeeds, `4000 0000 0000 0002` is declined, `4000 0000 0000 9995` is
//! declined for insufficient funds; any other number that passes the Luhn check succeeds.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

/// Why a charge failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The card was declined; the reason is for the user.
    #[error("{0}")]
    Declined(String),
    /// The card number is not a card number.
    #[error("{0}")]
    InvalidCard(String),
    /// The provider could not be reached.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
}

/// A boxed future, so providers can be trait objects.
pub type PaymentFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Takes and refunds payments. `idempotency_key` makes a retried charge return the same payment.
pub trait PaymentProvider: Send + Sync + 'static {
    /// Charges `amount_cents` to the card; returns the provider's payment reference.
    fn charge<'a>(
        &'a self,
        idempotency_key: &'a str,
        card_number: &'a str,
        amount_cents: u64,
        currency: &'a str,
    ) -> PaymentFuture<'a, Result<String, PaymentError>>;

    /// Refunds `amount_cents` of a payment.
    fn refund<'a>(
        &'a self,
        payment_ref: &'a str,
        amount_cents: u64,
    ) -> PaymentFuture<'a, Result<(), PaymentError>>;
}

/// The built-in test provider: decides by card number, remembers charges in memory.
#[derive(Default)]
pub struct TestPayments {
    charges: Mutex<BTreeMap<String, (String, u64)>>,
    refunded_cents: Mutex<BTreeMap<String, u64>>,
}

/// The test card that always succeeds.
pub const CARD_OK: &str = "4242424242424242";
/// The test card that is always declined.
pub const CARD_DECLINED: &str = "4000000000000002";
/// The test card declined for insufficient funds.
pub const CARD_NO_FUNDS: &str = "4000000000009995";

impl TestPayments {
    /// Returns how much of a payment was refunded.
    pub fn refunded_cents(&self, payment_ref: &str) -> u64 {
        self.refunded_cents
            .lock()
            .expect("poisoned")
            .get(payment_ref)
            .copied()
            .unwrap_or(0)
    }
}

/// Checks the Luhn digit of a card number.
fn luhn_ok(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.chars().rev().enumerate() {
        let Some(mut d) = c.to_digit(10) else {
            return false;
        };
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

/// Strips spaces and dashes and checks the shape of a card number.
pub fn normalize_card(card: &str) -> Result<String, PaymentError> {
    let digits: String = card.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if !(12..=19).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(PaymentError::InvalidCard(
            "a card number has 12 to 19 digits".into(),
        ));
    }
    if !luhn_ok(&digits) {
        return Err(PaymentError::InvalidCard(
            "the card number is mistyped (check digit)".into(),
        ));
    }
    Ok(digits)
}

impl PaymentProvider for TestPayments {
    fn charge<'a>(
        &'a self,
        idempotency_key: &'a str,
        card_number: &'a str,
        amount_cents: u64,
        _currency: &'a str,
    ) -> PaymentFuture<'a, Result<String, PaymentError>> {
        Box::pin(async move {
            let card = normalize_card(card_number)?;
            match card.as_str() {
                CARD_DECLINED => {
                    return Err(PaymentError::Declined("the card was declined".into()));
                }
                CARD_NO_FUNDS => {
                    return Err(PaymentError::Declined(
                        "insufficient funds on the card".into(),
                    ));
                }
                _ => {}
            }
            let mut charges = self.charges.lock().expect("poisoned");
            let next = charges.len() + 1;
            let (payment_ref, _) = charges
                .entry(idempotency_key.to_owned())
                .or_insert_with(|| (format!("testpay_{next:08}"), amount_cents));
            Ok(payment_ref.clone())
        })
    }

    fn refund<'a>(
        &'a self,
        payment_ref: &'a str,
        amount_cents: u64,
    ) -> PaymentFuture<'a, Result<(), PaymentError>> {
        Box::pin(async move {
            *self
                .refunded_cents
                .lock()
                .expect("poisoned")
                .entry(payment_ref.to_owned())
                .or_insert(0) += amount_cents;
            Ok(())
        })
    }
}
