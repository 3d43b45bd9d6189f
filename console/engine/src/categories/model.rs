//! The linfa classifiers compared for categorisation, behind one interface
//! that turns app names into a probability for each category.

use std::collections::BTreeSet;
use std::fmt;

use linfa::traits::{Fit, Predict};
use linfa::Dataset;
use linfa_bayes::{BernoulliNb, NaiveBayes};
use linfa_ensemble::{RandomForest, RandomForestParams};
use linfa_logistic::{MultiFittedLogisticRegression, MultiLogisticRegression};
use linfa_trees::DecisionTree;
use ndarray::{Array1, Array2, Axis};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::features::{self, CharNgramTfidf};
use super::CategoriesError;

/// L2 penalty of the logistic regression (its loss is summed over rows).
const LOGISTIC_ALPHA: f32 = 0.03;
/// L-BFGS iterations of the logistic regression.
const LOGISTIC_MAX_ITERATIONS: u64 = 50;
/// Laplace smoothing of the Bernoulli naive Bayes.
const NAIVE_BAYES_ALPHA: f32 = 0.001;
/// Trees in the random forest.
const FOREST_TREES: usize = 30;
/// Share of the n-gram columns each tree of the forest is given.
const FOREST_FEATURE_PROPORTION: f64 = 0.1;
/// Seed of the forest's bootstrap, so that training is deterministic.
const FOREST_SEED: u64 = 0x00ca_7e90;

/// A linfa classifier that can sit behind the TF-IDF features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClassifierKind {
    /// `linfa-logistic` multinomial logistic regression; confidence is its
    /// softmax probability.
    MultinomialLogistic,
    /// `linfa-bayes` Bernoulli naive Bayes over n-gram presence; confidence
    /// is its posterior. (Its multinomial variant prints every class
    /// histogram to stderr when fitted in linfa-bayes 0.8.1, so it is left
    /// out.)
    BernoulliNaiveBayes,
    /// `linfa-ensemble` random forest of `linfa-trees` decision trees, as
    /// the seed product used; confidence is the share of trees voting for
    /// the category.
    RandomForest,
}

impl ClassifierKind {
    /// Every classifier compared.
    pub const ALL: [ClassifierKind; 3] = [
        ClassifierKind::MultinomialLogistic,
        ClassifierKind::BernoulliNaiveBayes,
        ClassifierKind::RandomForest,
    ];

    /// The one the categoriser uses: it measured best held out (module doc).
    pub const CHOSEN: ClassifierKind = ClassifierKind::MultinomialLogistic;

    /// Human-readable name, as reports print it.
    pub fn name(self) -> &'static str {
        match self {
            ClassifierKind::MultinomialLogistic => "multinomial logistic regression",
            ClassifierKind::BernoulliNaiveBayes => "Bernoulli naive Bayes",
            ClassifierKind::RandomForest => "random forest",
        }
    }
}

impl fmt::Display for ClassifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fitted classifier; classes are indices into [`Model::categories`].
enum Fitted {
    Logistic(MultiFittedLogisticRegression<f32, usize>),
    NaiveBayes(BernoulliNb<f32, usize>),
    Forest(RandomForest<f32, usize>),
}

/// Vectoriser, fitted classifier and the categories it knows.
pub(crate) struct Model {
    kind: ClassifierKind,
    vectoriser: CharNgramTfidf,
    fitted: Fitted,
    /// Sorted; class `i` of the classifier is `categories[i]`.
    categories: Vec<String>,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("classifier", &self.kind.name())
            .field("features", &self.vectoriser.width())
            .field("categories", &self.categories)
            .finish()
    }
}

impl Model {
    /// Fits the vectoriser and a `kind` classifier on `(app name, category)`
    /// rows (already de-duplicated by the caller).
    pub(crate) fn fit(
        rows: &[(String, String)],
        kind: ClassifierKind,
    ) -> Result<Model, CategoriesError> {
        let categories: Vec<String> = rows
            .iter()
            .map(|(_, category)| category.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if categories.len() < 2 {
            return Err(CategoriesError::TooFewCategories {
                found: categories.len(),
            });
        }
        // `categories` holds every row's category, sorted: its partition
        // point is that category's index.
        let targets: Vec<usize> = rows
            .iter()
            .map(|(_, category)| categories.partition_point(|known| known < category))
            .collect();
        let names: Vec<&str> = rows.iter().map(|(name, _)| name.as_str()).collect();
        let vectoriser = CharNgramTfidf::fit(names.iter().copied());
        let dataset = Dataset::new(vectoriser.transform(&names), Array1::from(targets));
        let fitted = match kind {
            ClassifierKind::MultinomialLogistic => Fitted::Logistic(
                MultiLogisticRegression::default()
                    .alpha(LOGISTIC_ALPHA)
                    .max_iterations(LOGISTIC_MAX_ITERATIONS)
                    .fit(&dataset)
                    .map_err(|err| training_error(kind, err))?,
            ),
            ClassifierKind::BernoulliNaiveBayes => Fitted::NaiveBayes(
                BernoulliNb::params()
                    .alpha(NAIVE_BAYES_ALPHA)
                    .fit(&dataset)
                    .map_err(|err| training_error(kind, err))?,
            ),
            ClassifierKind::RandomForest => Fitted::Forest(
                RandomForestParams::new_fixed_rng(
                    DecisionTree::params(),
                    StdRng::seed_from_u64(FOREST_SEED),
                )
                .ensemble_size(FOREST_TREES)
                .bootstrap_proportion(1.0)
                .feature_proportion(FOREST_FEATURE_PROPORTION)
                .fit(&dataset)
                .map_err(|err| training_error(kind, err))?,
            ),
        };
        Ok(Model {
            kind,
            vectoriser,
            fitted,
            categories,
        })
    }

    pub(crate) fn kind(&self) -> ClassifierKind {
        self.kind
    }

    /// Sorted categories the classifier can answer.
    pub(crate) fn categories(&self) -> &[String] {
        &self.categories
    }

    /// Probability of each category (columns, in [`Model::categories`]
    /// order) for each name (rows).
    pub(crate) fn probabilities(&self, names: &[&str]) -> Array2<f32> {
        let features = self.vectoriser.transform(names);
        let mut probabilities = Array2::zeros((names.len(), self.categories.len()));
        match &self.fitted {
            Fitted::Logistic(model) => {
                let by_column = model.predict_probabilities(&features);
                for (column, &class) in model.classes().iter().enumerate() {
                    probabilities
                        .column_mut(class)
                        .assign(&by_column.column(column));
                }
            }
            Fitted::NaiveBayes(model) => {
                let (by_column, classes) = model.predict_proba(features.view());
                for (column, &&class) in classes.iter().enumerate() {
                    probabilities
                        .column_mut(class)
                        .assign(&by_column.column(column));
                }
            }
            Fitted::Forest(forest) => {
                // linfa's own forest vote breaks ties in HashMap order; this
                // counts the votes itself so that ties and confidences are
                // deterministic.
                for (tree, columns) in forest.models.iter().zip(&forest.model_features) {
                    let votes: Array1<usize> = tree.predict(&features.select(Axis(1), columns));
                    for (row, &class) in votes.iter().enumerate() {
                        probabilities[[row, class]] += 1.0;
                    }
                }
                let trees = forest.models.len().max(1) as f32;
                probabilities /= trees;
            }
        }
        probabilities
    }

    /// Most probable category index of each name and its probability; ties
    /// go to the category sorted first.
    pub(crate) fn predict(&self, names: &[&str]) -> Vec<(usize, f32)> {
        self.probabilities(names)
            .rows()
            .into_iter()
            .map(|row| {
                row.iter().enumerate().fold(
                    (0, f32::NEG_INFINITY),
                    |best, (class, &probability)| {
                        if probability > best.1 {
                            (class, probability)
                        } else {
                            best
                        }
                    },
                )
            })
            .collect()
    }
}

/// A fitted multinomial logistic regression as stored (the chosen
/// classifier is the only one kept; see `persist.rs`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredModel {
    vectoriser: CharNgramTfidf,
    categories: Vec<String>,
    logistic: MultiFittedLogisticRegression<f32, usize>,
}

impl Model {
    /// What `kind` is trained with, in words (classifier, its parameters,
    /// the vectoriser's settings): part of what a stored model is keyed
    /// by, so that a build training differently does not load it.
    pub(crate) fn fingerprint(kind: ClassifierKind) -> String {
        let parameters = match kind {
            ClassifierKind::MultinomialLogistic => {
                format!("alpha {LOGISTIC_ALPHA}, {LOGISTIC_MAX_ITERATIONS} iterations")
            }
            ClassifierKind::BernoulliNaiveBayes => format!("alpha {NAIVE_BAYES_ALPHA}"),
            ClassifierKind::RandomForest => format!(
                "{FOREST_TREES} trees, feature proportion {FOREST_FEATURE_PROPORTION}, \
                 seed {FOREST_SEED:#x}"
            ),
        };
        format!(
            "{kind} ({parameters}) over {}",
            features::settings_fingerprint()
        )
    }

    /// The stored form of a multinomial logistic regression; `None` for the
    /// other classifiers, which are only measured, never kept.
    pub(crate) fn to_stored(&self) -> Option<StoredModel> {
        match &self.fitted {
            Fitted::Logistic(logistic) => Some(StoredModel {
                vectoriser: self.vectoriser.clone(),
                categories: self.categories.clone(),
                logistic: logistic.clone(),
            }),
            Fitted::NaiveBayes(_) | Fitted::Forest(_) => None,
        }
    }

    /// The model back from its stored form, refused unless its shapes are
    /// those [`Model::fit`] makes (a weight row per n-gram, a column and an
    /// intercept per category, classes `0..categories`) and its numbers
    /// finite: [`Model::probabilities`] relies on that.
    pub(crate) fn from_stored(stored: StoredModel) -> Result<Model, String> {
        let StoredModel {
            vectoriser,
            categories,
            logistic,
        } = stored;
        if categories.len() < 2 || categories.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err(format!(
                "categories are not two or more sorted names: {categories:?}"
            ));
        }
        let (params, intercept) = (logistic.params(), logistic.intercept());
        if params.dim() != (vectoriser.width(), categories.len())
            || intercept.len() != categories.len()
        {
            return Err(format!(
                "weights are {:?} and intercepts {} for {} n-grams and {} categories",
                params.dim(),
                intercept.len(),
                vectoriser.width(),
                categories.len()
            ));
        }
        if logistic.classes().iter().copied().ne(0..categories.len()) {
            return Err(format!(
                "classes {:?} are not 0..{}",
                logistic.classes(),
                categories.len()
            ));
        }
        if params
            .iter()
            .chain(intercept)
            .any(|value| !value.is_finite())
        {
            return Err("a weight or intercept is not finite".to_owned());
        }
        Ok(Model {
            kind: ClassifierKind::MultinomialLogistic,
            vectoriser,
            fitted: Fitted::Logistic(logistic),
            categories,
        })
    }
}

fn training_error(kind: ClassifierKind, err: impl fmt::Display) -> CategoriesError {
    CategoriesError::Training {
        classifier: kind.name(),
        message: err.to_string(),
    }
}
