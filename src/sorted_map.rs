//! A JSON map read into a sorted Vec: the manifest's files and the hash cache's entries.
//! Imports nothing from the crate.

use serde::Deserialize;

/// A JSON map read into a Vec sorted by key, with no tree or table beside it. Writers put
/// keys in order, so usually nothing moves; otherwise the pairs are sorted, and of a key
/// given twice the last counts (as in a map).
#[derive(Debug)]
pub struct SortedMap<K, V>(pub Vec<(K, V)>);

impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> Deserialize<'de> for SortedMap<K, V> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<K, V>(std::marker::PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<K, V> {
            type Value = SortedMap<K, V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs: Vec<(K, V)> = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                if !pairs.windows(2).all(|w| w[0].0 < w[1].0) {
                    pairs.reverse();
                    pairs.sort_by(|a, b| a.0.cmp(&b.0));
                    pairs.dedup_by(|later, earlier| later.0 == earlier.0);
                }
                pairs.shrink_to_fit();
                Ok(SortedMap(pairs))
            }
        }
        deserializer.deserialize_map(Visitor(std::marker::PhantomData))
    }
}
