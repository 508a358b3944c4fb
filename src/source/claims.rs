//! The names written in one run, each owned by the source that claimed it first: naming schemes can make two
//! sources meet at one name, and the second must not overwrite the first.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct Claims(Mutex<HashMap<String, String>>);

/// The source URI that owns a name already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner(pub String);

impl Claims {
    /// Take `key` for the source `uri`; `Err` with the owner when another source has it already.
    pub fn claim(&self, key: &str, uri: &str) -> Result<(), Owner> {
        // Held only for a map lookup, never across other work.
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some(owner) if owner != uri => Err(Owner(owner.clone())),
            Some(_) => Ok(()),
            None => {
                map.insert(key.to_string(), uri.to_string());
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_source_keeps_a_name() {
        let c = Claims::default();
        assert_eq!(c.claim("a/b.jpg", "x"), Ok(()));
        assert_eq!(c.claim("a/b.jpg", "x"), Ok(()));
        assert_eq!(c.claim("a/b.jpg", "y"), Err(Owner("x".to_string())));
    }
}
