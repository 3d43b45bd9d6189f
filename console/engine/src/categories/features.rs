//! TF-IDF over character n-grams of lower-cased application names, padded at
//! word boundaries (scikit-learn's `char_wb` analyser), L2-normalised.

use std::collections::{BTreeMap, HashMap};

use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// Shortest n-gram, in characters (padding included).
const MIN_NGRAM_CHARS: usize = 1;
/// Longest n-gram, in characters (padding included).
const MAX_NGRAM_CHARS: usize = 4;
/// Only this many leading characters of a name are looked at: real
/// application names are far shorter, and it bounds the work on odd input.
const MAX_NAME_CHARS: usize = 256;
/// N-grams found in fewer training names than this are dropped: they only
/// memorise one name, and dropping them makes training about three times
/// faster at a held-out cost under one point (module doc of `categories`).
const MIN_DOCUMENT_FREQUENCY: usize = 2;

/// Vocabulary and inverse document frequencies learnt from training names.
/// Stored as [`StoredTfidf`], checked when read back.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(into = "StoredTfidf", try_from = "StoredTfidf")]
pub(crate) struct CharNgramTfidf {
    /// N-gram → column; columns follow the n-grams' sorted order.
    columns: HashMap<String, usize>,
    /// Smoothed IDF of each column: `ln((1 + docs) / (1 + df)) + 1`.
    idf: Vec<f32>,
}

impl CharNgramTfidf {
    /// Learns the vocabulary of `names`: the n-grams found in at least
    /// [`MIN_DOCUMENT_FREQUENCY`] of them.
    pub(crate) fn fit<'a>(names: impl IntoIterator<Item = &'a str>) -> CharNgramTfidf {
        let mut document_frequency: BTreeMap<String, usize> = BTreeMap::new();
        let mut documents = 0_usize;
        for name in names {
            documents += 1;
            for gram in ngram_counts(name).into_keys() {
                *document_frequency.entry(gram).or_default() += 1;
            }
        }
        let documents_f64 = documents as f64;
        let mut columns = HashMap::with_capacity(document_frequency.len());
        let mut idf = Vec::with_capacity(document_frequency.len());
        for (column, (gram, df)) in document_frequency
            .into_iter()
            .filter(|&(_, df)| df >= MIN_DOCUMENT_FREQUENCY)
            .enumerate()
        {
            columns.insert(gram, column);
            idf.push((((1.0 + documents_f64) / (1.0 + df as f64)).ln() + 1.0) as f32);
        }
        CharNgramTfidf { columns, idf }
    }

    /// Number of feature columns.
    pub(crate) fn width(&self) -> usize {
        self.idf.len()
    }

    /// One L2-normalised TF-IDF row per name; n-grams unseen in training are
    /// ignored, so a name sharing none gives a row of zeros.
    pub(crate) fn transform(&self, names: &[&str]) -> Array2<f32> {
        let mut matrix = Array2::zeros((names.len(), self.width()));
        for (mut row, name) in matrix.rows_mut().into_iter().zip(names) {
            for (gram, count) in ngram_counts(name) {
                if let Some(&column) = self.columns.get(&gram) {
                    row[column] = count as f32 * self.idf[column];
                }
            }
            let norm = row.dot(&row).sqrt();
            if norm > 0.0 {
                row /= norm;
            }
        }
        matrix
    }
}

/// How [`CharNgramTfidf`] is stored: the n-grams in column order (sorted)
/// and their IDFs.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredTfidf {
    grams: Vec<String>,
    idf: Vec<f32>,
}

impl From<CharNgramTfidf> for StoredTfidf {
    fn from(tfidf: CharNgramTfidf) -> StoredTfidf {
        let mut grams = vec![String::new(); tfidf.idf.len()];
        for (gram, column) in tfidf.columns {
            grams[column] = gram;
        }
        StoredTfidf {
            grams,
            idf: tfidf.idf,
        }
    }
}

impl TryFrom<StoredTfidf> for CharNgramTfidf {
    type Error = String;

    /// Refuses what [`CharNgramTfidf::fit`] cannot have made: n-grams not
    /// strictly sorted (so repeated), or not one IDF per n-gram, or an IDF
    /// that is not finite.
    fn try_from(stored: StoredTfidf) -> Result<CharNgramTfidf, String> {
        if stored.grams.len() != stored.idf.len() {
            return Err(format!(
                "{} n-grams but {} IDFs",
                stored.grams.len(),
                stored.idf.len()
            ));
        }
        if stored.grams.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err("n-grams not strictly sorted".to_owned());
        }
        if stored.idf.iter().any(|idf| !idf.is_finite()) {
            return Err("an IDF is not finite".to_owned());
        }
        let columns = stored
            .grams
            .into_iter()
            .enumerate()
            .map(|(column, gram)| (gram, column))
            .collect();
        Ok(CharNgramTfidf {
            columns,
            idf: stored.idf,
        })
    }
}

/// The settings the vectoriser was built with, in words: part of what a
/// stored model is keyed by.
pub(crate) fn settings_fingerprint() -> String {
    format!(
        "char n-grams {MIN_NGRAM_CHARS}..={MAX_NGRAM_CHARS}, first {MAX_NAME_CHARS} chars, \
         min document frequency {MIN_DOCUMENT_FREQUENCY}"
    )
}

/// Counts of the padded character n-grams of `name`'s words (its first
/// [`MAX_NAME_CHARS`] characters, lower-cased).
fn ngram_counts(name: &str) -> HashMap<String, usize> {
    let lowered: String = name
        .chars()
        .take(MAX_NAME_CHARS)
        .collect::<String>()
        .to_lowercase();
    let mut counts = HashMap::new();
    for word in lowered.split_whitespace() {
        let padded: Vec<char> = std::iter::once(' ')
            .chain(word.chars())
            .chain(std::iter::once(' '))
            .collect();
        for width in MIN_NGRAM_CHARS..=MAX_NGRAM_CHARS.min(padded.len()) {
            // The bare padding is no n-gram of the word.
            for window in padded.windows(width).filter(|window| window != &[' ']) {
                *counts.entry(window.iter().collect::<String>()).or_default() += 1;
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ngrams_are_padded_per_word_and_lower_cased() {
        let counts = ngram_counts("Qt Go");
        for gram in [
            " q", "qt", "t ", " qt", "qt ", " qt ", " g", "go", "o ", " go ", "go ",
        ] {
            assert_eq!(counts.get(gram), Some(&1), "{gram:?}");
        }
        assert!(!counts.contains_key("t g"), "no n-gram spans two words");
    }

    #[test]
    fn rows_are_unit_length_and_unknown_names_are_zero() {
        let tfidf = CharNgramTfidf::fit(["Slack", "Spotify", "Steam"]);
        let matrix = tfidf.transform(&["slack", "zzz", ""]);
        let norm = matrix.row(0).dot(&matrix.row(0)).sqrt();
        assert!((norm - 1.0).abs() < 1e-9);
        assert!(matrix.row(1).iter().all(|&value| value == 0.0));
        assert!(matrix.row(2).iter().all(|&value| value == 0.0));
    }

    #[test]
    fn stored_form_round_trips_and_bad_ones_are_refused() {
        let tfidf = CharNgramTfidf::fit(["Slack", "Spotify", "Steam", "Skype"]);
        let names = ["slack", "steam engine", "zzz"];
        let back = CharNgramTfidf::try_from(StoredTfidf::from(tfidf.clone())).unwrap();
        assert_eq!(back.transform(&names), tfidf.transform(&names));
        let stored = |grams: &[&str], idf: &[f32]| StoredTfidf {
            grams: grams.iter().map(|gram| (*gram).to_owned()).collect(),
            idf: idf.to_vec(),
        };
        for bad in [
            stored(&["a", "b"], &[1.0]),
            stored(&["b", "a"], &[1.0, 1.0]),
            stored(&["a", "a"], &[1.0, 1.0]),
            stored(&["a"], &[f32::NAN]),
        ] {
            assert!(CharNgramTfidf::try_from(bad).is_err());
        }
    }
}
