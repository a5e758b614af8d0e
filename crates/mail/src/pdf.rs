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
    let mono_id = Ref::new(5);
    let page_ids: Vec<Ref> = (0..tickets.len())
        .map(|i| Ref::new(6 + 2 * i as i32))
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
    pdf.type1_font(mono_id)
        .base_font(Name(b"Courier"))
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
            .pair(Name(b"F2"), bold_id)
            .pair(Name(b"F3"), mono_id);
        drop(page);
        pdf.stream(content_id, &page_content(ticket));
    }
    pdf.finish()
}

/// Draws one ticket's page.
fn page_content(ticket: &TicketInfo) -> Vec<u8> {
    let mut c = Content::new();
    let mut y = PAGE_HEIGHT - MARGIN - 24.0;
    for line in wrap(&ticket.event_name, TITLE_CHARS_PER_LINE, TITLE_LINES_MAX) {
        text(&mut c, "F2", 24.0, MARGIN, y, &line);
        y -= 30.0;
    }
    y -= 4.0;
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
    for line in lines.iter().flat_map(|l| wrap(l, LINE_CHARS, 2)) {
        text(&mut c, "F1", 14.0, MARGIN, y, &line);
        y -= 20.0;
    }
    let qr_top = y - 20.0;
    if let Some(drawn_side) = qr(&mut c, &ticket.code, MARGIN, qr_top) {
        y = qr_top - drawn_side - 24.0;
    }
    text(&mut c, "F1", 10.0, MARGIN, y, "Show this code at the door:");
    // Courier at 9 pt is 5.4 pt a character: a code line fits the page with room to spare.
    let code: Vec<char> = ticket.code.chars().collect();
    for (i, chunk) in code.chunks(CODE_CHARS_PER_LINE).enumerate() {
        let line: String = chunk.iter().collect();
        text(&mut c, "F3", 9.0, MARGIN, y - 14.0 - 12.0 * i as f32, &line);
    }
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

/// Characters of the 24 pt title per line (a conservative average for Helvetica-Bold).
const TITLE_CHARS_PER_LINE: usize = 32;
/// Lines of title at most; the rest is cut with an ellipsis.
const TITLE_LINES_MAX: usize = 3;
/// Characters of 14 pt text per line.
const LINE_CHARS: usize = 62;
/// Characters of the ticket code per line.
const CODE_CHARS_PER_LINE: usize = 60;

/// Breaks `text` into at most `lines_max` lines of about `width` characters at spaces (a word
/// longer than a line is cut), the last one ending in `...` when text is left over.
fn wrap(text: &str, width: usize, lines_max: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let word: String = word.chars().take(width).collect();
        let len = current.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&word);
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    if lines.len() > lines_max {
        lines.truncate(lines_max);
        let last = &mut lines[lines_max - 1];
        let kept: String = last.chars().take(width.saturating_sub(3)).collect();
        *last = format!("{kept}...");
    }
    lines
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
        assert!(text.contains("/Courier"));
        assert_eq!(text.matches(&format!("/{QR_MARK} BMC")).count(), 2);
        // Non-ASCII lines are hex strings: "Zo", ë (0xEB) in WinAnsi, "'s".
        assert!(text.contains("<5A6FEB27"), "ë in WinAnsi");
        assert!(!text.contains('✓'));
    }

    /// Wrapping keeps words whole, cuts a word longer than a line, and ends a text that does not
    /// fit with an ellipsis.
    #[test]
    fn wrapping() {
        assert_eq!(wrap("a bb ccc", 4, 3), ["a bb", "ccc"]);
        assert_eq!(wrap("abcdefgh", 4, 3), ["abcd"]);
        assert_eq!(wrap("aaaa bbbb cccc dddd", 5, 2), ["aaaa", "bb..."]);
        assert_eq!(wrap("", 4, 2), [""]);
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
