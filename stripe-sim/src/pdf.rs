//! A minimal, valid PDF 1.4 document of text lines (one Letter page, Helvetica),
//! built by hand: an invoice's `invoice_pdf` must open in a PDF reader, and a page of
//! text needs no PDF library. Offsets in the cross-reference table are computed from
//! the bytes written, so readers find every object without repairing the file.

/// Text a PDF string literal can hold: WinAnsi-safe ASCII, with `\`, `(` and `)`
/// escaped; anything else becomes `?`.
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '(' | ')' => {
                out.push('\\');
                out.push(c);
            }
            '×' => out.push('x'),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

/// A one-page PDF with `title` in large type and `lines` below it (lines past the
/// bottom margin are dropped).
pub(crate) fn text_document(title: &str, lines: &[String]) -> Vec<u8> {
    let mut content = format!("BT\n/F1 20 Tf\n72 720 Td\n({}) Tj\n", literal(title));
    content.push_str("/F1 11 Tf\n0 -30 Td\n");
    for line in lines.iter().take(44) {
        content.push_str(&format!("({}) Tj\n0 -15 Td\n", literal(line)));
    }
    content.push_str("ET\n");

    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
         /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>"
            .to_string(),
        format!(
            "<< /Length {} >>\nstream\n{content}endstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_string(),
    ];
    let mut pdf: Vec<u8> = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(format!("xref\n0 {}\n", objects.len() + 1).as_bytes());
    pdf.extend_from_slice(b"0000000000 65535 f \n");
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_reference_offsets_point_at_their_objects() {
        let pdf = text_document("Invoice (A)", &["1 × Pro".to_string(), "é".to_string()]);
        let text = String::from_utf8_lossy(&pdf);
        assert!(pdf.starts_with(b"%PDF-1.4\n"));
        assert!(text.ends_with("%%EOF\n"));
        let startxref: usize = text
            .rsplit("startxref\n")
            .next()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(pdf[startxref..].starts_with(b"xref\n0 6\n"));
        let table = &text[text.find("xref\n0 6\n").unwrap() + 9..];
        for (i, row) in table.lines().skip(1).take(5).enumerate() {
            let offset: usize = row[..10].parse().unwrap();
            let expect = format!("{} 0 obj", i + 1);
            assert!(
                pdf[offset..].starts_with(expect.as_bytes()),
                "object {}",
                i + 1
            );
        }
        assert!(text.contains("(Invoice \\(A\\)) Tj"));
        assert!(text.contains("(1 x Pro) Tj"));
        assert!(text.contains("(?) Tj"));
        // The stream length matches its content.
        let len: usize = text
            .split("/Length ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let start = text.find("stream\n").unwrap() + 7;
        assert_eq!(&text[start + len..start + len + 9], "endstream");
    }
}
