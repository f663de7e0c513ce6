//! `ContentType`: what is drawn on a label, and the one table of its names.
//!
//! **Invariant:** [`TABLE`] is the only place a content type's name is
//! written. `as_str`, `parse`, `NAMES`, serde (both directions) and the
//! command-line help all read it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What is drawn on the label. The upstream hub's seven types keep their
/// names and required fields; the rest are labelhub additions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentType {
    QrOnly,
    QrOneLine,
    QrTwoLines,
    QrThreeLines,
    TextOneLine,
    TextTwoLines,
    QrWithListing,
    BarcodeOneLine,
    BarcodeTwoLines,
    DatamatrixTwoLines,
    Image,
}

/// Every content type with its wire name, in declaration order (checked at
/// compile time below, so `as_str` can index it).
const TABLE: [(ContentType, &str); 11] = [
    (ContentType::QrOnly, "qr_only"),
    (ContentType::QrOneLine, "qr_one_line"),
    (ContentType::QrTwoLines, "qr_two_lines"),
    (ContentType::QrThreeLines, "qr_three_lines"),
    (ContentType::TextOneLine, "text_one_line"),
    (ContentType::TextTwoLines, "text_two_lines"),
    (ContentType::QrWithListing, "qr_with_listing"),
    (ContentType::BarcodeOneLine, "barcode_one_line"),
    (ContentType::BarcodeTwoLines, "barcode_two_lines"),
    (ContentType::DatamatrixTwoLines, "datamatrix_two_lines"),
    (ContentType::Image, "image"),
];

const _: () = {
    let mut i = 0;
    while i < TABLE.len() {
        assert!(
            TABLE[i].0 as usize == i,
            "TABLE must follow declaration order"
        );
        i += 1;
    }
};

impl ContentType {
    /// Every content type, in table order.
    pub const ALL: [ContentType; 11] = {
        let mut all = [ContentType::QrOnly; 11];
        let mut i = 0;
        while i < TABLE.len() {
            all[i] = TABLE[i].0;
            i += 1;
        }
        all
    };

    /// Every name, in table order.
    pub const NAMES: [&'static str; 11] = {
        let mut names = [""; 11];
        let mut i = 0;
        while i < TABLE.len() {
            names[i] = TABLE[i].1;
            i += 1;
        }
        names
    };

    pub fn as_str(self) -> &'static str {
        TABLE[self as usize].1
    }

    pub fn parse(name: &str) -> Option<ContentType> {
        TABLE.iter().find(|(_, n)| *n == name).map(|&(ct, _)| ct)
    }

    /// Required fields, in the order they are reported when missing. For the
    /// upstream types this is upstream's table order.
    pub fn required_fields(self) -> &'static [&'static str] {
        match self {
            ContentType::QrOnly => &["qr_payload"],
            ContentType::QrOneLine => &["qr_payload", "primary_id"],
            ContentType::QrTwoLines => &["qr_payload", "primary_id", "title"],
            ContentType::QrThreeLines => &["qr_payload", "primary_id", "title", "secondary"],
            ContentType::TextOneLine => &["primary_id"],
            ContentType::TextTwoLines => &["primary_id", "title"],
            ContentType::QrWithListing => &["qr_payload", "primary_id", "items"],
            ContentType::BarcodeOneLine => &["barcode", "primary_id"],
            ContentType::BarcodeTwoLines => &["barcode", "primary_id", "title"],
            ContentType::DatamatrixTwoLines => &["barcode", "primary_id", "title"],
            ContentType::Image => &["image"],
        }
    }
}

impl Serialize for ContentType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// From its name; an unknown name is serde's usual "unknown variant"
/// error listing the known ones.
impl<'de> Deserialize<'de> for ContentType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ContentType, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        ContentType::parse(&name)
            .ok_or_else(|| serde::de::Error::unknown_variant(&name, &ContentType::NAMES))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_name_table() {
        for (i, ct) in ContentType::ALL.into_iter().enumerate() {
            assert_eq!(ct.as_str(), ContentType::NAMES[i]);
            assert_eq!(ContentType::parse(ct.as_str()), Some(ct));
            let json = serde_json::to_string(&ct).unwrap();
            assert_eq!(json, format!("\"{}\"", ct.as_str()));
            assert_eq!(serde_json::from_str::<ContentType>(&json).unwrap(), ct);
        }
        assert_eq!(ContentType::parse("QR_ONLY"), None);
        let err = serde_json::from_str::<ContentType>("\"qr\"").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown variant `qr`, expected one of `qr_only`"),
            "{err}"
        );
    }
}
