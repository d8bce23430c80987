//! Short strings that repeat all through a dump (role names as owners, the spelling of a kind
//! pgalign does not know), held once for the process: where ~100,000 blocks a side each named
//! one, each now holds a 4-byte index instead of a 24-byte string.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// An interned string. Equal names are equal indexes; order is the strings' order.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Name(u32);

/// Every name interned so far, by index (0 is ""), and the index of each.
struct Names {
    spellings: Vec<&'static str>,
    index: HashMap<&'static str, u32>,
}

fn names() -> MutexGuard<'static, Names> {
    static NAMES: OnceLock<Mutex<Names>> = OnceLock::new();
    let m = NAMES.get_or_init(|| {
        Mutex::new(Names {
            spellings: vec![""],
            index: HashMap::from([("", 0)]),
        })
    });
    // The list is only ever appended to whole: a panic elsewhere leaves it consistent.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The first names' spellings, each set once (under the lock, when interned) and then read
/// without it. Pages of it never touched take no memory.
static SPELLINGS: [OnceLock<&'static str>; 1 << 16] = [const { OnceLock::new() }; 1 << 16];

thread_local! {
    /// The two names this thread interned last, newest first: block after block, a dump names
    /// the same schema and the same owner, one after the other.
    static LAST: Cell<[(&'static str, u32); 2]> = const { Cell::new([("", 0); 2]) };
}

impl Name {
    pub fn new(text: &str) -> Name {
        let last = LAST.get();
        if let Some(&(_, i)) = last.iter().find(|(s, _)| *s == text) {
            return Name(i);
        }
        let mut n = names();
        let i = match n.index.get(text) {
            Some(&i) => i,
            None => {
                // Leaked on purpose: a name lives as long as the process, and a dump has few.
                let spelling: &'static str = Box::leak(text.into());
                let i = u32::try_from(n.spellings.len()).expect("fewer than 2^32 names");
                n.spellings.push(spelling);
                n.index.insert(spelling, i);
                if let Some(slot) = SPELLINGS.get(i as usize) {
                    let _ = slot.set(spelling);
                }
                i
            }
        };
        LAST.set([(n.spellings[i as usize], i), last[0]]);
        Name(i)
    }
    pub fn as_str(self) -> &'static str {
        if self.0 == 0 {
            return "";
        }
        // Read without the lock: keys compare their names while sorting, on two threads.
        if let Some(s) = SPELLINGS.get(self.0 as usize).and_then(OnceLock::get) {
            return s;
        }
        names().spellings[self.0 as usize]
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Name {
    fn from(text: &str) -> Self {
        Name::new(text)
    }
}

impl From<&String> for Name {
    fn from(text: &String) -> Self {
        Name::new(text)
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if self.0 == other.0 {
            return std::cmp::Ordering::Equal;
        }
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_are_one_name_on_every_thread() {
        let a = Name::new("app_owner");
        let b = std::thread::spawn(|| Name::new("app_owner"))
            .join()
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(&*a, "app_owner");
        assert_ne!(Name::new("app_owner2"), a);
        assert_eq!(Name::new("app_owner").as_str(), "app_owner");
        assert!(Name::default().is_empty());
        // A schema and an owner in turn, as blocks name them, each served by the recent names.
        let (s, o) = (Name::new("tenant_7"), Name::new("tenant_7_owner"));
        for _ in 0..3 {
            assert_eq!(Name::new("tenant_7"), s);
            assert_eq!(Name::new("tenant_7_owner"), o);
        }
        assert_eq!((s.as_str(), o.as_str()), ("tenant_7", "tenant_7_owner"));
        assert_ne!(Name::new("tenant_8"), s);
        assert_eq!(Name::new(""), Name::default());
        assert!(Name::new("a") < Name::new("b") && Name::new("b") > Name::new("a"));
        assert_eq!(
            format!("{:?} {}", Name::new("x\"y"), Name::new("r")),
            "\"x\\\"y\" r"
        );
    }
}
