//! "Did you mean …?": the closest names to a misspelt one, by edit distance.
//!
//! Used only on error paths (an unknown op, edit op or function), so it
//! favours plain code over speed: a Levenshtein distance over characters,
//! with inputs cut to a bounded length so a hostile name costs little.

/// Names longer than this are compared by their first `MAX_CHARS`
/// characters only.
const MAX_CHARS: usize = 64;

/// At most this many suggestions are made.
pub const MAX_SUGGESTIONS: usize = 3;

/// The Levenshtein distance between `a` and `b` (insertions, deletions and
/// substitutions of one character each cost 1), over their first
/// `MAX_CHARS` characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(MAX_CHARS).collect();
    let b: Vec<char> = b.chars().take(MAX_CHARS).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut row = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            row[j + 1] = substitute.min(prev[j + 1] + 1).min(row[j] + 1);
        }
        std::mem::swap(&mut prev, &mut row);
    }
    prev[b.len()]
}

/// The largest distance at which `candidate` still counts as close to a
/// query: a quarter of the longer name, at least 1, so `ad` finds `add` and
/// `math::fibb` finds `math::fib` (not `math::fact`), but `select` finds
/// nothing among the ops.
fn threshold(query: &str, candidate: &str) -> usize {
    (query.chars().count().max(candidate.chars().count()) / 4).max(1)
}

/// The candidates closest to any of `queries`, best first (then
/// alphabetically), at most [`MAX_SUGGESTIONS`]. Each candidate is compared
/// through the keys `keys` gives for it (say, a qualified name and its last
/// segment); its distance is the smallest over queries and keys. A
/// candidate equal to a query is not suggested.
pub fn closest<'a, I, K>(queries: &[&str], candidates: I, keys: K) -> Vec<&'a str>
where
    I: IntoIterator<Item = &'a str>,
    K: Fn(&'a str) -> Vec<&'a str>,
{
    let mut scored: Vec<(usize, &'a str)> = candidates
        .into_iter()
        .filter(|c| !queries.contains(c))
        .filter_map(|c| {
            let keys = keys(c);
            queries
                .iter()
                .flat_map(|q| keys.iter().map(move |k| (*q, *k)))
                .filter_map(|(q, k)| {
                    let limit = threshold(q, k);
                    // The distance is at least the difference in length.
                    if q.chars().count().abs_diff(k.chars().count()) > limit {
                        return None;
                    }
                    let d = edit_distance(q, k);
                    (d <= limit).then_some(d)
                })
                .min()
                .map(|d| (d, c))
        })
        .collect();
    scored.sort_unstable();
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, c)| c)
        .collect()
}

/// [`closest`] comparing each candidate as a whole.
pub fn closest_names<'a>(
    query: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a str> {
    closest(&[query], candidates, |c| vec![c])
}

/// `` (did you mean `a` or `b`?) `` with a leading space, or nothing when
/// there are no suggestions.
pub fn did_you_mean(suggestions: &[&str]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => format!(" (did you mean `{one}`?)"),
        [init @ .., last] => format!(
            " (did you mean {} or `{last}`?)",
            init.iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! distance_cases {
        ($($name:ident: $a:expr, $b:expr => $d:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(edit_distance($a, $b), $d);
                assert_eq!(edit_distance($b, $a), $d, "symmetric");
            }
        )*};
    }

    distance_cases! {
        distance_equal: "add", "add" => 0;
        distance_empty: "", "abc" => 3;
        distance_insert: "ad", "add" => 1;
        distance_delete: "fibb", "fib" => 1;
        distance_substitute: "sub", "sum" => 1;
        distance_transpose_is_two: "lt", "tl" => 2;
        distance_unrelated: "select", "if" => 6;
        distance_unicode_counts_chars: "café", "cafe" => 1;
    }

    #[test]
    fn distance_of_huge_names_is_bounded() {
        let a = "x".repeat(100_000);
        let b = "y".repeat(100_000);
        assert_eq!(edit_distance(&a, &b), MAX_CHARS);
    }

    const OPS: [&str; 6] = ["add", "and", "sub", "if", "call", "const"];

    #[test]
    fn close_typos_are_suggested_best_first() {
        assert_eq!(closest_names("ad", OPS), ["add", "and"]);
        assert_eq!(closest_names("cal", OPS), ["call"]);
    }

    #[test]
    fn nothing_close_suggests_nothing() {
        assert!(closest_names("select", OPS).is_empty());
        assert!(closest_names("add", OPS).iter().all(|s| *s != "add"));
    }

    #[test]
    fn keys_let_a_bare_name_find_its_qualified_name() {
        let names = ["math::fib", "math::fact", "demo::f"];
        let last = |c: &'static str| vec![c, c.rsplit("::").next().unwrap_or(c)];
        assert_eq!(closest(&["fib"], names, last), ["math::fib"]);
        assert_eq!(closest(&["math::fibb"], names, last), ["math::fib"]);
        // The wrong module: the bare names match.
        assert_eq!(closest(&["other::fib", "fib"], names, last), ["math::fib"]);
    }

    #[test]
    fn at_most_three() {
        let names = ["ab", "ac", "ad", "ae"];
        assert_eq!(closest_names("aa", names).len(), MAX_SUGGESTIONS);
    }

    #[test]
    fn did_you_mean_reads_as_english() {
        assert_eq!(did_you_mean(&[]), "");
        assert_eq!(did_you_mean(&["add"]), " (did you mean `add`?)");
        assert_eq!(
            did_you_mean(&["add", "and", "sub"]),
            " (did you mean `add`, `and` or `sub`?)"
        );
    }
}
