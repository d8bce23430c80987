//! Object kinds as types. pg_dump names each entry's kind in its header (`Type: FK
//! CONSTRAINT`); the catalog reads that once into an `ObjectKind`, and the rest of pgalign
//! matches on variants. The spelling is kept for output (plan JSON, diff JSON, display) and for
//! order: kinds sort by their spelling, as the strings they replace did, so that every sorted
//! output stays byte-for-byte what it was. A kind this list does not know (a newer pg_dump's)
//! is `Other`, with its text.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;

macro_rules! kinds {
    ($($variant:ident => $text:literal,)*) => {
        /// pg_dump's Type of an entry, and pgalign's own `OWNER` (an entry's ALTER ... OWNER TO,
        /// kept as a block of its own).
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum ObjectKind {
            $($variant,)*
            Other(OtherKind),
        }

        /// The known kinds alone, fieldless: their derived order is the list's (by spelling),
        /// a comparison of two small integers.
        #[derive(PartialEq, Eq, PartialOrd, Ord)]
        enum Rank {
            $($variant,)*
        }

        impl ObjectKind {
            /// The kind as pg_dump spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ObjectKind::$variant => $text,)*
                    ObjectKind::Other(s) => s.as_str(),
                }
            }

            /// A known kind's place in the list (ordered by spelling); None for `Other`.
            fn rank(&self) -> Option<Rank> {
                match self {
                    $(ObjectKind::$variant => Some(Rank::$variant),)*
                    ObjectKind::Other(_) => None,
                }
            }

            /// Every spelling this list knows, in its order.
            #[cfg(test)]
            fn spellings() -> &'static [&'static str] {
                &[$($text,)*]
            }

            /// The spelling of a kind this list knows.
            fn static_str(&self) -> &'static str {
                match self {
                    $(ObjectKind::$variant => $text,)*
                    ObjectKind::Other(_) => "",
                }
            }

            /// The kind pg_dump calls `text`; `Other` for one this list does not know.
            pub fn from_text(text: &str) -> ObjectKind {
                match text {
                    $($text => ObjectKind::$variant,)*
                    _ => ObjectKind::Other(text.into()),
                }
            }
        }
    };
}

// In the order of their spelling: `Ord` compares known kinds by their place here (a test checks
// the order), which keeps every sorted output as it was when kinds were strings.
kinds! {
    AccessMethod => "ACCESS METHOD",
    Acl => "ACL",
    Aggregate => "AGGREGATE",
    Cast => "CAST",
    CheckConstraint => "CHECK CONSTRAINT",
    Collation => "COLLATION",
    Comment => "COMMENT",
    Constraint => "CONSTRAINT",
    Conversion => "CONVERSION",
    Database => "DATABASE",
    Default => "DEFAULT",
    DefaultAcl => "DEFAULT ACL",
    Domain => "DOMAIN",
    EventTrigger => "EVENT TRIGGER",
    Extension => "EXTENSION",
    FkConstraint => "FK CONSTRAINT",
    ForeignDataWrapper => "FOREIGN DATA WRAPPER",
    ForeignTable => "FOREIGN TABLE",
    Function => "FUNCTION",
    Index => "INDEX",
    IndexAttach => "INDEX ATTACH",
    LargeObject => "LARGE OBJECT",
    MaterializedView => "MATERIALIZED VIEW",
    Operator => "OPERATOR",
    OperatorClass => "OPERATOR CLASS",
    OperatorFamily => "OPERATOR FAMILY",
    Owner => "OWNER",
    Policy => "POLICY",
    ProceduralLanguage => "PROCEDURAL LANGUAGE",
    Procedure => "PROCEDURE",
    Publication => "PUBLICATION",
    PublicationTable => "PUBLICATION TABLE",
    PublicationTablesInSchema => "PUBLICATION TABLES IN SCHEMA",
    RowSecurity => "ROW SECURITY",
    Rule => "RULE",
    Schema => "SCHEMA",
    SecurityLabel => "SECURITY LABEL",
    Sequence => "SEQUENCE",
    SequenceOwnedBy => "SEQUENCE OWNED BY",
    ForeignServer => "SERVER",
    ShellType => "SHELL TYPE",
    Statistics => "STATISTICS",
    Subscription => "SUBSCRIPTION",
    SubscriptionTable => "SUBSCRIPTION TABLE",
    Table => "TABLE",
    TableAttach => "TABLE ATTACH",
    TextSearchConfiguration => "TEXT SEARCH CONFIGURATION",
    TextSearchDictionary => "TEXT SEARCH DICTIONARY",
    TextSearchParser => "TEXT SEARCH PARSER",
    TextSearchTemplate => "TEXT SEARCH TEMPLATE",
    Transform => "TRANSFORM",
    Trigger => "TRIGGER",
    Type => "TYPE",
    UserMapping => "USER MAPPING",
    View => "VIEW",
}

use ObjectKind as K;

/// A kind the list does not know, by its spelling (interned: every block's key holds a kind,
/// and a string there would make each key 24 bytes larger for a kind almost never `Other`).
pub type OtherKind = super::name::Name;

impl ObjectKind {
    /// A table of either sort: the kinds whose CREATE lists columns.
    pub fn is_table(&self) -> bool {
        matches!(self, K::Table | K::ForeignTable)
    }

    /// A view of either sort.
    pub fn is_view(&self) -> bool {
        matches!(self, K::View | K::MaterializedView)
    }

    /// Relation kinds: dropping one takes its attached objects with it.
    pub fn is_relation(&self) -> bool {
        self.is_table() || self.is_view()
    }

    /// A function-like kind (its identity carries its argument types).
    pub fn is_routine(&self) -> bool {
        matches!(self, K::Function | K::Procedure | K::Aggregate)
    }

    /// A table constraint of any sort (`CONSTRAINT`, `CHECK CONSTRAINT`, `FK CONSTRAINT`).
    pub fn is_constraint(&self) -> bool {
        matches!(self, K::Constraint | K::CheckConstraint | K::FkConstraint)
    }

    /// Kinds that say something about another object (its comment, privileges, owner, label)
    /// and have no identity of their own.
    pub fn is_about_another(&self) -> bool {
        matches!(self, K::Comment | K::Acl | K::SecurityLabel)
    }

    /// Kinds that live on another object and vanish with it.
    pub fn is_attached(&self) -> bool {
        self.is_constraint()
            || matches!(
                self,
                K::Index
                    | K::Trigger
                    | K::Rule
                    | K::Policy
                    | K::Default
                    | K::Comment
                    | K::Acl
                    | K::Owner
                    | K::SecurityLabel
                    | K::SequenceOwnedBy
                    | K::RowSecurity
                    | K::IndexAttach
            )
    }

    /// Kinds that hold no data and can be dropped and created again when they change.
    pub fn is_recreatable(&self) -> bool {
        self.is_constraint()
            || self.is_view()
            || self.is_routine()
            || matches!(
                self,
                K::Index
                    | K::Trigger
                    | K::Rule
                    | K::Policy
                    | K::Default
                    | K::Cast
                    | K::EventTrigger
                    | K::TableAttach
                    | K::PublicationTable
                    | K::Statistics
                    | K::Comment
                    | K::Acl
                    | K::Owner
                    | K::SecurityLabel
                    | K::SequenceOwnedBy
                    | K::RowSecurity
                    | K::Operator
                    | K::TextSearchConfiguration
                    | K::TextSearchDictionary
                    | K::Conversion
                    | K::IndexAttach
            )
    }

    /// Kinds whose "create" re-applies on top of an existing object (no drop needed first).
    pub fn is_reapplied(&self) -> bool {
        matches!(
            self,
            K::Comment | K::Acl | K::Owner | K::SecurityLabel | K::Default | K::SequenceOwnedBy
        )
    }

    /// The object type as `DROP <type> <identity>` spells it, for the kinds that statement
    /// takes (`PROCEDURAL LANGUAGE` is `LANGUAGE`); None for entries that are not objects of
    /// their own (ACL, COMMENT, DEFAULT, ...), for what pgalign must never drop (DATABASE) and
    /// for kinds it does not know: a header's text never becomes SQL.
    pub fn drop_keyword(&self) -> Option<&'static str> {
        Some(match self {
            K::ProceduralLanguage => "LANGUAGE",
            K::TextSearchConfiguration
            | K::TextSearchDictionary
            | K::TextSearchTemplate
            | K::TextSearchParser
            | K::ForeignDataWrapper
            | K::MaterializedView
            | K::OperatorFamily
            | K::OperatorClass
            | K::AccessMethod
            | K::EventTrigger
            | K::ForeignTable
            | K::UserMapping
            | K::Subscription
            | K::Publication
            | K::Constraint
            | K::Statistics
            | K::Collation
            | K::Conversion
            | K::Extension
            | K::Aggregate
            | K::Procedure
            | K::Transform
            | K::Function
            | K::Operator
            | K::Sequence
            | K::Trigger
            | K::Domain
            | K::Schema
            | K::ForeignServer
            | K::Policy
            | K::Index
            | K::Table
            | K::Type
            | K::View
            | K::Rule
            | K::Cast => self.static_str(),
            _ => return None,
        })
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for ObjectKind {
    fn from(text: &str) -> Self {
        ObjectKind::from_text(text)
    }
}

/// By spelling, as the strings did: sorted outputs keep their order.
impl Ord for ObjectKind {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.rank(), other.rank()) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self.as_str().cmp(other.as_str()),
        }
    }
}

impl PartialOrd for ObjectKind {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for ObjectKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ObjectKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(ObjectKind::from_text(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_reads_back_as_itself() {
        for text in [
            "TABLE",
            "FK CONSTRAINT",
            "SERVER",
            "OWNER",
            "TEXT SEARCH PARSER",
        ] {
            let k = ObjectKind::from_text(text);
            assert!(!matches!(k, K::Other(_)), "{text}");
            assert_eq!(k.as_str(), text);
        }
        assert_eq!(
            ObjectKind::from_text("NEW THING"),
            K::Other("NEW THING".into())
        );
    }

    #[test]
    fn the_list_is_in_the_order_of_its_spellings() {
        let s = ObjectKind::spellings();
        assert!(s.windows(2).all(|w| w[0] < w[1]), "{s:?}");
    }

    #[test]
    fn kinds_sort_as_their_spelling() {
        let mut kinds: Vec<ObjectKind> = ["TABLE", "ACL", "NEW THING", "FK CONSTRAINT", "SERVER"]
            .into_iter()
            .map(ObjectKind::from_text)
            .collect();
        kinds.sort();
        let texts: Vec<&str> = kinds.iter().map(ObjectKind::as_str).collect();
        assert_eq!(
            texts,
            ["ACL", "FK CONSTRAINT", "NEW THING", "SERVER", "TABLE"]
        );
    }

    #[test]
    fn serializes_as_its_spelling() {
        let k = ObjectKind::FkConstraint;
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(json, "\"FK CONSTRAINT\"");
        assert_eq!(serde_json::from_str::<ObjectKind>(&json).unwrap(), k);
    }
}
