//! The printable ticket: one A4 page per ticket with the event, its date and venue, the seat, the
//! holder and the ticket's signed code — as text, and as a QR code drawn as vector squares, so it
//! prints sharp at any size and the same code the door scanner admits is on paper.
//!
//! Text is set in the PDF standard font Helvetica (no font is embedded; every reader has it) in
//! WinAnsi encoding: characters outside Latin-1 print as `?`. The QR modules are drawn inside a
//! marked-content section named [`QR_MARK`], one `re` per horizontal run of dark modules in module
//! units, so a test (or a tool) can recover the symbol from the page's content stream.

use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str};
use qrcode::{Color, QrCode};

/// The marked-content tag around the QR code's modules in a ticket page's content stream.
pub const QR_MARK: &str = "TixQR";

/// What a ticket page shows; every string is already formatted for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketInfo {
    /// The ticket's number.
    pub ticket_id: u64,
    /// The event's name.
    pub event_name: String,
    /// When it starts, formatted ("Tue 12 Jan 2027, 19:30 UTC").
    pub starts_at: String,
    /// Where.
    pub venue: String,
    /// The seat ("Seat 17"), or `None` for general admission.
    pub seat: Option<String>,
    /// The account the ticket belongs to.
    pub holder: String,
    /// The signed ticket code the door checks; the QR code encodes exactly this.
    pub code: String,
}

const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 56.0;
/// The QR code's side on paper, in points (about 7 cm): big enough for any phone camera.
const QR_SIDE: f32 = 200.0;

/// Renders one page per ticket into one PDF document.
pub fn tickets_pdf(tickets: &[TicketInfo]) -> Vec<u8> {
    let catalog_id = Ref::new(1);
    let tree_id = Ref::new(2);
    let font_id = Ref::new(3);
    let bold_id = Ref::new(4);
    let page_ids: Vec<Ref> = (0..tickets.len())
        .map(|i| Ref::new(5 + 2 * i as i32))
        .collect();
    let mut pdf = Pdf::new();
    pdf.catalog(catalog_id).pages(tree_id);
    pdf.pages(tree_id)
        .kids(page_ids.iter().copied())
        .count(page_ids.len() as i32);
    pdf.type1_font(font_id)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold_id)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    for (ticket, page_id) in tickets.iter().zip(&page_ids) {
        let content_id = Ref::new(page_id.get() + 1);
        let mut page = pdf.page(*page_id);
        page.parent(tree_id)
            .media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
            .contents(content_id);
        page.resources()
            .fonts()
            .pair(Name(b"F1"), font_id)
            .pair(Name(b"F2"), bold_id);
        drop(page);
        pdf.stream(content_id, &page_content(ticket));
    }
    pdf.finish()
}

/// Draws one ticket's page.
fn page_content(ticket: &TicketInfo) -> Vec<u8> {
    let mut c = Content::new();
    let mut y = PAGE_HEIGHT - MARGIN - 24.0;
    text(&mut c, "F2", 24.0, MARGIN, y, &ticket.event_name);
    y -= 34.0;
    let mut lines = vec![
        format!("When: {}", ticket.starts_at),
        format!("Where: {}", ticket.venue),
    ];
    lines.push(
        ticket
            .seat
            .clone()
            .unwrap_or_else(|| "General admission".to_owned()),
    );
    lines.push(format!(
        "Ticket #{} for {}",
        ticket.ticket_id, ticket.holder
    ));
    for line in &lines {
        text(&mut c, "F1", 14.0, MARGIN, y, line);
        y -= 20.0;
    }
    let qr_top = y - 20.0;
    if let Some(drawn_side) = qr(&mut c, &ticket.code, MARGIN, qr_top) {
        y = qr_top - drawn_side - 24.0;
    }
    text(&mut c, "F1", 10.0, MARGIN, y, "Show this code at the door:");
    text(&mut c, "F1", 10.0, MARGIN, y - 14.0, &ticket.code);
    text(
        &mut c,
        "F1",
        9.0,
        MARGIN,
        MARGIN,
        "One admission per ticket; the code is checked once at the door.",
    );
    c.finish().to_vec()
}

/// Writes one line of text with its baseline at (`x`, `y`).
fn text(c: &mut Content, font: &str, size: f32, x: f32, y: f32, line: &str) {
    c.begin_text();
    c.set_font(Name(font.as_bytes()), size);
    c.next_line(x, y);
    c.show(Str(&win_ansi(line)));
    c.end_text();
}

/// Returns the text in WinAnsi (Latin-1 for what matters here); other characters become `?`.
fn win_ansi(line: &str) -> Vec<u8> {
    line.chars()
        .map(|ch| {
            u8::try_from(u32::from(ch))
                .ok()
                .filter(|b| *b >= 0x20)
                .unwrap_or(b'?')
        })
        .collect()
}

/// Draws the QR code of `code` with its top-left corner at (`x`, `top`), quiet zone included;
/// returns the side drawn, or `None` when the code is too long for a QR symbol.
fn qr(c: &mut Content, code: &str, x: f32, top: f32) -> Option<f32> {
    let symbol = QrCode::new(code.as_bytes()).ok()?;
    let width = symbol.width();
    let colors = symbol.to_colors();
    // Four modules of quiet zone on each side, as the standard asks.
    let module = QR_SIDE / (width + 8) as f32;
    let origin_x = x + 4.0 * module;
    let origin_y = top - 4.0 * module;
    c.save_state();
    c.begin_marked_content(Name(QR_MARK.as_bytes()));
    // Module units from here: x to the right, y downwards from the symbol's top-left corner.
    c.transform([module, 0.0, 0.0, -module, origin_x, origin_y]);
    c.set_fill_gray(0.0);
    for (row, line) in colors.chunks(width).enumerate() {
        for (start, run) in dark_runs(line) {
            c.rect(start as f32, row as f32, run as f32, 1.0);
        }
    }
    c.fill_nonzero();
    c.end_marked_content();
    c.restore_state();
    Some(QR_SIDE)
}

/// Returns the runs of dark modules of one row as (first column, length).
fn dark_runs(line: &[Color]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, color) in line.iter().chain([&Color::Light]).enumerate() {
        match (color, start) {
            (Color::Dark, None) => start = Some(i),
            (Color::Light, Some(s)) => {
                runs.push((s, i - s));
                start = None;
            }
            _ => {}
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(code: &str) -> TicketInfo {
        TicketInfo {
            ticket_id: 7,
            event_name: "Zoë's Concert ✓".into(),
            starts_at: "Tue 12 Jan 2027, 19:30 UTC".into(),
            venue: "Hall".into(),
            seat: Some("Seat 17".into()),
            holder: "ann".into(),
            code: code.into(),
        }
    }

    /// A document with two tickets has two pages, the codes as text, a QR section each, and
    /// non-Latin-1 characters replaced rather than written raw.
    #[test]
    fn two_tickets_two_pages() {
        let pdf = tickets_pdf(&[ticket("TIX2-AAAA"), ticket("TIX2-BBBB")]);
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.starts_with("%PDF-"));
        assert!(text.contains("/Count 2"));
        assert!(text.contains("(TIX2-AAAA)") && text.contains("(TIX2-BBBB)"));
        assert_eq!(text.matches(&format!("/{QR_MARK} BMC")).count(), 2);
        // Non-ASCII lines are hex strings: "Zo", ë (0xEB) in WinAnsi, "'s".
        assert!(text.contains("<5A6FEB27"), "ë in WinAnsi");
        assert!(!text.contains('✓'));
    }

    /// Runs cover exactly the dark modules, including one that reaches the row's end.
    #[test]
    fn runs_of_a_row() {
        use Color::{Dark as D, Light as L};
        assert_eq!(
            dark_runs(&[D, D, L, D, L, L, D]),
            vec![(0, 2), (3, 1), (6, 1)]
        );
        assert_eq!(dark_runs(&[L, L]), vec![]);
    }
}
