//! Did-you-mean suggestions for misspelt keys, values and node names.

/// The candidate closest to `input` by Jaro-Winkler similarity, if it is close enough to be a
/// plausible typo (0.8 keeps `adress`→`address` and drops unrelated words).
pub fn closest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(input, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.to_owned())
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn typos_get_the_intended_word_and_nonsense_gets_nothing() {
        assert_eq!(closest("adress", ["interface", "address", "rdma_device"]).as_deref(), Some("address"));
        assert_eq!(closest("rdma_dev", ["interface", "address", "rdma_device"]).as_deref(), Some("rdma_device"));
        assert_eq!(closest("zzz", ["interface", "address"]), None);
    }
}
