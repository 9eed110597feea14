//! Matching the partner's organizations with ConnectWise companies by name (pure; compiled for the browser and the
//! server).
//!
//! - **Exact** is what delivery relies on: the names are equal, case included, ignoring only spaces at either end
//!   (the guide: the organization's name must match the company's exactly).
//! - **Near misses** are offered as suggestions when there is no exact match, closest first (see [`Closeness`]):
//!   names that differ only in case; then only in spacing, punctuation or accents ("Globex Inc" and "Globex, Inc.");
//!   then also in a legal suffix such as Inc., LLC, Ltd or GmbH, or a leading "The" ("Acme Corp" and "Acme
//!   Corporation"). Other words are never dropped: "Initech" is not a near miss of "Initech Holdings".
//!
//! [`CompanyNames`] indexes a site's companies once (a site may have thousands), so matching every organization
//! costs a few hash lookups each.

use std::collections::HashMap;

/// Suggestions offered for one organization, at most.
pub const MAX_SUGGESTIONS: usize = 3;

/// Legal-form words removed from the end of a name (after case folding and removing dots, so "Inc." and "L.L.C."
/// are "inc" and "llc"). Several may follow each other ("Co., Ltd.", "Pty Ltd").
pub const LEGAL_SUFFIXES: &[&str] = &[
    "inc",
    "incorporated",
    "llc",
    "llp",
    "lllp",
    "lp",
    "ltd",
    "limited",
    "corp",
    "corporation",
    "co",
    "company",
    "plc",
    "pc",
    "pllc",
    "ulc",
    "gmbh",
    "ag",
    "kg",
    "sa",
    "sarl",
    "sas",
    "srl",
    "spa",
    "bv",
    "nv",
    "pty",
    "pte",
    "pvt",
    "oy",
    "ab",
];

/// How a near miss differs from the organization's name; the closest sort first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Closeness {
    /// Only in upper and lower case ("acme corporation" and "Acme Corporation").
    Case,
    /// In spacing, punctuation or accents, perhaps case too ("Globex Inc" and "Globex, Inc.").
    Punctuation,
    /// Also in a legal suffix or a leading "The" ("Acme Corp" and "Acme Corporation").
    Suffix,
}

/// Whether a company's name matches an organization's exactly: equal, case included, once trimmed.
pub fn is_exact(organization: &str, company: &str) -> bool {
    organization.trim() == company.trim()
}

/// A lower-case letter without its accent, as text ("é" → "e", "ß" → "ss"); other characters unchanged.
fn fold(c: char, out: &mut String) {
    let plain = match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'č' => "c",
        'ď' | 'đ' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => "e",
        'ì' | 'í' | 'î' | 'ï' | 'ī' => "i",
        'ł' => "l",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
        'œ' => "oe",
        'ř' => "r",
        'ś' | 'š' | 'ş' => "s",
        'ß' => "ss",
        'ť' | 'ţ' => "t",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => "u",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => {
            out.push(c);
            return;
        }
    };
    out.push_str(plain);
}

/// The words of a name: lower case without accents; dots and apostrophes dropped inside words ("Inc." → "inc",
/// "L.L.C." → "llc", "Margie's" → "margies"); "&" read as "and"; any other punctuation or space separates words.
pub fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    for c in name.chars() {
        if c.is_alphanumeric() {
            for lower in c.to_lowercase() {
                fold(lower, &mut current);
            }
        } else if matches!(c, '.' | '\'' | '’' | '`' | '´') {
            // Part of an abbreviation or a possessive: joins its neighbours.
        } else {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            if c == '&' {
                words.push("and".to_owned());
            }
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// The name without case, accents, spacing or punctuation: "Globex, Inc." → "globexinc".
pub fn compact_key(name: &str) -> String {
    words(name).concat()
}

/// [`compact_key`] after also removing a leading "The" and trailing legal suffixes (with an "and" left dangling by
/// "& Co."), never the last word: "The Acme Co., Ltd." → "acme", "Smith & Co" → "smith", "Inc." → "inc".
pub fn core_key(name: &str) -> String {
    let mut words = words(name);
    if words.len() > 1 && words[0] == "the" {
        words.remove(0);
    }
    let mut removed_suffix = false;
    while words.len() > 1 {
        let last = words[words.len() - 1].as_str();
        if LEGAL_SUFFIXES.contains(&last) || (removed_suffix && last == "and") {
            removed_suffix = true;
            words.pop();
        } else {
            break;
        }
    }
    words.concat()
}

/// How close `company` comes to `organization` when it is not an exact match; `None` for an exact match or a
/// different name.
pub fn closeness(organization: &str, company: &str) -> Option<Closeness> {
    if is_exact(organization, company) {
        return None;
    }
    if organization.trim().to_lowercase() == company.trim().to_lowercase() {
        return Some(Closeness::Case);
    }
    let compact = compact_key(organization);
    if compact.is_empty() {
        return None;
    }
    if compact == compact_key(company) {
        return Some(Closeness::Punctuation);
    }
    (core_key(organization) == core_key(company)).then_some(Closeness::Suffix)
}

/// An organization's exact company, or its near misses (closest first, at most [`MAX_SUGGESTIONS`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameMatch {
    pub exact: Option<String>,
    pub suggestions: Vec<String>,
}

/// A site's company names, indexed for matching many organizations.
#[derive(Debug, Clone, Default)]
pub struct CompanyNames {
    names: Vec<String>,
    /// Trimmed name → the first company with it.
    exact: HashMap<String, usize>,
    by_compact: HashMap<String, Vec<usize>>,
    by_core: HashMap<String, Vec<usize>>,
}

impl CompanyNames {
    pub fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut index = CompanyNames::default();
        for name in names {
            let name: String = name.into();
            let i = index.names.len();
            index.exact.entry(name.trim().to_owned()).or_insert(i);
            let compact = compact_key(&name);
            if !compact.is_empty() {
                index.by_core.entry(core_key(&name)).or_default().push(i);
                index.by_compact.entry(compact).or_default().push(i);
            }
            index.names.push(name);
        }
        index
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The company named exactly like `organization`, or else its near misses.
    pub fn find(&self, organization: &str) -> NameMatch {
        if let Some(&i) = self.exact.get(organization.trim()) {
            return NameMatch { exact: Some(self.names[i].clone()), suggestions: Vec::new() };
        }
        let compact = compact_key(organization);
        if compact.is_empty() {
            return NameMatch::default();
        }
        let core = core_key(organization);
        let candidates = self.by_compact.get(&compact).into_iter().chain(self.by_core.get(&core)).flatten();
        let org_len = organization.trim().chars().count();
        let mut ranked: Vec<(Closeness, usize, String, &str)> = candidates
            .filter_map(|&i| {
                let name = self.names[i].as_str();
                let closeness = closeness(organization, name)?;
                let len_diff = name.trim().chars().count().abs_diff(org_len);
                Some((closeness, len_diff, name.to_lowercase(), name))
            })
            .collect();
        ranked.sort();
        let mut suggestions: Vec<String> = Vec::new();
        for (_, _, _, name) in ranked {
            if suggestions.len() == MAX_SUGGESTIONS {
                break;
            }
            if !suggestions.iter().any(|s| s == name) {
                suggestions.push(name.to_owned());
            }
        }
        NameMatch { exact: None, suggestions }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(names: &[&str]) -> CompanyNames {
        CompanyNames::new(names.iter().copied())
    }

    #[test]
    fn exact_means_equal_with_case_ignoring_outer_spaces() {
        assert!(is_exact("Acme Corporation", "Acme Corporation"));
        assert!(is_exact("Acme Corporation", " Acme Corporation  "));
        assert!(!is_exact("acme corporation", "Acme Corporation"));
        assert!(!is_exact("Acme  Corporation", "Acme Corporation"));
        assert!(!is_exact("Globex Inc", "Globex, Inc."));
    }

    #[test]
    fn words_fold_case_accents_and_punctuation() {
        assert_eq!(words("Globex, Inc."), ["globex", "inc"]);
        assert_eq!(words("  ACME   Corp  "), ["acme", "corp"]);
        assert_eq!(words("Margie's Travel L.L.C."), ["margies", "travel", "llc"]);
        assert_eq!(words("Société Générale"), ["societe", "generale"]);
        assert_eq!(words("Straße GmbH"), ["strasse", "gmbh"]);
        assert_eq!(words("Smith & Sons"), ["smith", "and", "sons"]);
        assert_eq!(words("Wal-Mart/Stores"), ["wal", "mart", "stores"]);
        assert_eq!(words("Zoë’s Café"), ["zoes", "cafe"]);
        assert_eq!(words("株式会社 トヨタ"), ["株式会社", "トヨタ"]);
        assert!(words(" -- ").is_empty());
        assert!(words("").is_empty());
    }

    #[test]
    fn keys_drop_spacing_punctuation_and_legal_suffixes() {
        assert_eq!(compact_key("Globex, Inc."), "globexinc");
        assert_eq!(compact_key("Globex Inc"), "globexinc");
        assert_eq!(compact_key("GlobexInc"), "globexinc");
        assert_eq!(core_key("Acme Corporation"), "acme");
        assert_eq!(core_key("Acme Corp."), "acme");
        assert_eq!(core_key("The Acme Co., Ltd."), "acme");
        assert_eq!(core_key("Acme Pty Ltd"), "acme");
        assert_eq!(core_key("Smith & Co"), "smith");
        assert_eq!(core_key("Smith & Sons"), "smithandsons", "only a dangling 'and' goes");
        assert_eq!(core_key("Initech Holdings"), "initechholdings", "ordinary words stay");
        assert_eq!(core_key("Müller GmbH & Co. KG"), "muller");
        // Never the last word, nor a "The" that is the whole name.
        assert_eq!(core_key("Inc."), "inc");
        assert_eq!(core_key("Company Inc"), "company");
        assert_eq!(core_key("The"), "the");
        assert_eq!(core_key("The Co"), "co");
        // A suffix in the middle is a word of the name.
        assert_eq!(core_key("Co Op Foods"), "coopfoods");
    }

    #[test]
    fn closeness_orders_case_then_punctuation_then_suffix() {
        assert_eq!(closeness("acme corporation", "Acme Corporation"), Some(Closeness::Case));
        assert_eq!(closeness("Globex Inc", "Globex, Inc."), Some(Closeness::Punctuation));
        assert_eq!(closeness("globex inc", "Globex, Inc."), Some(Closeness::Punctuation));
        assert_eq!(closeness("Wayne  Enterprises", "Wayne Enterprises"), Some(Closeness::Punctuation));
        assert_eq!(closeness("Societe Generale", "Société Générale"), Some(Closeness::Punctuation));
        assert_eq!(closeness("Acme Corp", "Acme Corporation"), Some(Closeness::Suffix));
        assert_eq!(closeness("Globex", "Globex, Inc."), Some(Closeness::Suffix));
        assert_eq!(closeness("Home Depot", "The Home Depot, Inc."), Some(Closeness::Suffix));
        assert_eq!(closeness("Acme Corporation", "Acme Corporation"), None, "exact is not a near miss");
        assert_eq!(closeness("Initech", "Initech Holdings"), None);
        assert_eq!(closeness("Stark Industries", "Stark Enterprises"), None);
        assert_eq!(closeness("!!!", "???"), None, "names without letters match nothing");
        assert!(Closeness::Case < Closeness::Punctuation && Closeness::Punctuation < Closeness::Suffix);
    }

    #[test]
    fn an_exact_match_wins_and_brings_no_suggestions() {
        let companies = index(&["Initech", "Initech Holdings", "initech", "Initech, Inc."]);
        let found = companies.find("Initech");
        assert_eq!(found.exact.as_deref(), Some("Initech"));
        assert!(found.suggestions.is_empty());
        // Outer spaces on either side do not prevent the exact match; the company's own spelling is returned.
        let found = index(&["Stark Industries "]).find(" Stark Industries");
        assert_eq!(found.exact.as_deref(), Some("Stark Industries "));
    }

    #[test]
    fn near_misses_are_suggested_best_first_and_at_most_three() {
        let companies = index(&[
            "Globex, Inc.",
            "Globex Corporation",
            "GLOBEX INC",
            "Globex",
            "Globex Incorporated",
            "Globex Holdings",
            "Initech",
        ]);
        let found = companies.find("Globex Inc");
        assert_eq!(found.exact, None);
        assert_eq!(found.suggestions, ["GLOBEX INC", "Globex, Inc.", "Globex"]);
        assert_eq!(found.suggestions.len(), MAX_SUGGESTIONS);
        assert!(!companies.find("Globex Inc").suggestions.contains(&"Globex Holdings".to_string()));

        let found = index(&["Acme Corporation", "Acme Corp.", "Acme Inc"]).find("acme corporation");
        assert_eq!(found.suggestions, ["Acme Corporation", "Acme Corp.", "Acme Inc"]);
    }

    #[test]
    fn the_demo_organizations_against_the_sandbox_companies() {
        let companies = index(&[
            "DWID Demo MSP",
            "Acme Corporation",
            "Globex, Inc.",
            "Initech",
            "Initech Holdings",
            "Stark Industries",
            "Umbrella Health",
            "Wayne Enterprises",
            "Cyberdyne Systems",
            "Northwind Traders LLC",
        ]);
        for name in ["Acme Corporation", "Initech", "Stark Industries", "Umbrella Health"] {
            assert_eq!(companies.find(name).exact.as_deref(), Some(name));
        }
        assert_eq!(companies.find("Globex Inc"), NameMatch { exact: None, suggestions: vec!["Globex, Inc.".into()] });
        assert_eq!(companies.find("acme corporation").suggestions, ["Acme Corporation"]);
        assert_eq!(companies.find("Northwind Traders").suggestions, ["Northwind Traders LLC"]);
        assert_eq!(companies.find("Contoso"), NameMatch::default());
    }

    #[test]
    fn duplicate_company_names_are_suggested_once_and_empty_names_never() {
        let companies = index(&["Acme, Inc.", "Acme, Inc.", "", "  ", "..."]);
        assert_eq!(companies.len(), 5);
        assert_eq!(companies.find("Acme Inc").suggestions, ["Acme, Inc."]);
        assert_eq!(companies.find("---"), NameMatch::default());
        assert_eq!(companies.find(""), NameMatch { exact: Some(String::new()), suggestions: vec![] });
        assert!(CompanyNames::default().is_empty());
        assert_eq!(CompanyNames::default().find("Acme"), NameMatch::default());
    }

    #[test]
    fn thousands_of_companies_are_indexed_once() {
        let names: Vec<String> = (0..5000).map(|i| format!("Company {i} LLC")).collect();
        let companies = CompanyNames::new(names);
        assert_eq!(companies.find("Company 4999 LLC").exact.as_deref(), Some("Company 4999 LLC"));
        assert_eq!(companies.find("company 4999").suggestions, ["Company 4999 LLC"]);
        assert!(companies.find("Company 5000").suggestions.is_empty());
    }
}
