//! The process's Prometheus metrics (server only): one registry, typed families, and the text exposition served on
//! `METRICS_ADDR`.
//!
//! A low module: it knows nothing of sign-in, delivery or ConnectWise. They call in with what happened
//! ([`Metrics::sign_in`], [`Metrics::delivery_attempt`], [`ConnectWiseResponses::record`], …); what is cheaper to
//! read than to maintain (deliveries by state, the queue, the hashing slots) is set at scrape time by the server
//! through [`Metrics::set_queue`] and [`Metrics::set_hash_slots`]. Every label has a closed set of values (the
//! HTTP route is the router's template, never the raw path), so no series can be created by a client.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`Metrics::encode`]'s output: the Prometheus text format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Label values of a closed set, written as their lower-case name.
macro_rules! label_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                encoder.write_str(self.as_str())
            }
        }
    };
}

label_enum! {
    /// How a sign-in attempt ended.
    SignInResult {
        Success => "success",
        /// A wrong email or password (or text that is not an email address).
        Failure => "failure",
        /// Refused before its password was checked: a rate limit, or every hashing slot busy.
        Throttled => "throttled",
    }
}

label_enum! {
    /// How a delivery attempt ended.
    AttemptOutcome {
        Delivered => "delivered",
        Retry => "retry",
        Failed => "failed",
    }
}

label_enum! {
    /// A ConnectWise answer's status class, or no answer at all.
    StatusClass {
        Informational => "1xx",
        Success => "2xx",
        Redirection => "3xx",
        ClientError => "4xx",
        ServerError => "5xx",
        TransportError => "transport_error",
    }
}

impl StatusClass {
    pub fn of(status: u16) -> Self {
        match status {
            200..=299 => Self::Success,
            300..=399 => Self::Redirection,
            400..=499 => Self::ClientError,
            500..=599 => Self::ServerError,
            _ => Self::Informational,
        }
    }
}

label_enum! {
    /// Why the import API refused a request (nothing was imported).
    ImportRefusal {
        Unauthorized => "unauthorized",
        RateLimited => "rate_limited",
        TooLarge => "too_large",
        UnsupportedFormat => "unsupported_format",
        Invalid => "invalid",
        QueueFull => "queue_full",
        Unavailable => "unavailable",
    }
}

label_enum! {
    /// Imported records: new ones, and those imported before (no-ops).
    ImportedRecord {
        New => "new",
        Duplicate => "duplicate",
    }
}

label_enum! {
    /// What a PSA request budget answered (see `request_budget`).
    BudgetDecision {
        Admitted => "admitted",
        /// The budget of the current window was used up.
        Refused => "refused",
        /// The count could not be kept (the database did not answer): not admitted.
        Unavailable => "unavailable",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: SignInResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: AttemptOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ClassLabel {
    pub class: StatusClass,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: ImportRefusal,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RecordLabel {
    pub kind: ImportedRecord,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

/// A request budget's answer: the PSA system (a name written in the code, such as `autotask`; never an account) and
/// the decision.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct BudgetLabels {
    pub system: &'static str,
    pub decision: BudgetDecision,
}

/// An HTTP request: the route template that matched (`/integrations/{id}/deliveries`, or one label for anything
/// unmatched), and the response status.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub status: u16,
}

/// Seconds: from a fast sandbox call to a ConnectWise site at its timeout.
const ATTEMPT_BUCKETS: [f64; 13] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

type AttemptHistogram = Family<OutcomeLabel, Histogram, fn() -> Histogram>;

fn attempt_histogram() -> Histogram {
    Histogram::new(ATTEMPT_BUCKETS)
}

/// ConnectWise answers by status class; the ConnectWise client holds a clone (one shared family).
#[derive(Clone, Debug, Default)]
pub struct ConnectWiseResponses(Family<ClassLabel, Counter>);

impl ConnectWiseResponses {
    pub fn record(&self, class: StatusClass) {
        self.0.get_or_create(&ClassLabel { class }).inc();
    }

    pub fn get(&self, class: StatusClass) -> u64 {
        self.0.get_or_create(&ClassLabel { class }).get()
    }
}

/// PSA requests asked of a request budget, by system and decision; the request budgets hold a clone.
#[derive(Clone, Debug, Default)]
pub struct RequestBudgetDecisions(Family<BudgetLabels, Counter>);

impl RequestBudgetDecisions {
    pub fn record(&self, system: &'static str, decision: BudgetDecision) {
        self.0.get_or_create(&BudgetLabels { system, decision }).inc();
    }

    pub fn get(&self, system: &'static str, decision: BudgetDecision) -> u64 {
        self.0.get_or_create(&BudgetLabels { system, decision }).get()
    }
}

/// The metrics of one process. Cheap to clone: every family shares its values with its clones.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    deliveries: Family<StateLabel, Gauge>,
    queue_depth: Gauge,
    oldest_due_age: Gauge<f64, AtomicU64>,
    attempts: AttemptHistogram,
    connectwise: ConnectWiseResponses,
    request_budget: RequestBudgetDecisions,
    import_records: Family<RecordLabel, Counter>,
    import_batches: Counter,
    import_refusals: Family<ReasonLabel, Counter>,
    sign_ins: Family<ResultLabel, Counter>,
    hash_slots_in_use: Gauge,
    hash_slots: Gauge,
    http_requests: Family<HttpLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry with every family registered under the `dwid_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("dwid");
        let metrics = Self {
            registry: Arc::new(Registry::default()),
            deliveries: Family::default(),
            queue_depth: Gauge::default(),
            oldest_due_age: Gauge::default(),
            attempts: Family::new_with_constructor(attempt_histogram as fn() -> Histogram),
            connectwise: ConnectWiseResponses::default(),
            request_budget: RequestBudgetDecisions::default(),
            import_records: Family::default(),
            import_batches: Counter::default(),
            import_refusals: Family::default(),
            sign_ins: Family::default(),
            hash_slots_in_use: Gauge::default(),
            hash_slots: Gauge::default(),
            http_requests: Family::default(),
        };
        registry.register(
            "deliveries",
            "Deliveries by stored state (pending, retrying, delivered, failed), read at scrape time",
            metrics.deliveries.clone(),
        );
        registry.register(
            "delivery_queue_depth",
            "Deliveries due now and not claimed by a worker (of Active integrations)",
            metrics.queue_depth.clone(),
        );
        registry.register_with_unit(
            "delivery_oldest_due_age",
            "How long the oldest due, unclaimed delivery has been due (0 when none is)",
            Unit::Seconds,
            metrics.oldest_due_age.clone(),
        );
        registry.register_with_unit(
            "delivery_attempt_duration",
            "Delivery attempts by this process's worker, by outcome (delivered, retry, failed)",
            Unit::Seconds,
            metrics.attempts.clone(),
        );
        registry.register(
            "connectwise_responses",
            "ConnectWise calls by the class of their answer (2xx, 3xx, 4xx, 5xx) or transport_error when none came",
            metrics.connectwise.0.clone(),
        );
        registry.register(
            "psa_request_budget_decisions",
            "PSA requests asked of a request budget, by system and decision: admitted, refused (the window's budget \
             was used up), unavailable (the database did not answer)",
            metrics.request_budget.0.clone(),
        );
        registry.register(
            "import_records",
            "Compromise records imported through the API: new, or duplicate (imported before, a no-op)",
            metrics.import_records.clone(),
        );
        registry.register("import_batches", "Import API batches stored", metrics.import_batches.clone());
        registry.register(
            "import_refusals",
            "Import API requests refused (nothing imported), by reason",
            metrics.import_refusals.clone(),
        );
        registry.register(
            "sign_ins",
            "Sign-in attempts by result: success, failure, throttled (rate limit or busy hashing slots)",
            metrics.sign_ins.clone(),
        );
        registry.register(
            "sign_in_hash_slots_in_use",
            "Password hashes (argon2) being computed now",
            metrics.hash_slots_in_use.clone(),
        );
        registry.register(
            "sign_in_hash_slots",
            "Password hashes that may be computed at once",
            metrics.hash_slots.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by route template and response status",
            metrics.http_requests.clone(),
        );
        // Every series of a closed label set exists from the start (at 0), so that rates and alerts see it before
        // its first event.
        for &result in SignInResult::ALL {
            metrics.sign_ins.get_or_create_owned(&ResultLabel { result });
        }
        for &outcome in AttemptOutcome::ALL {
            metrics.attempts.get_or_create_owned(&OutcomeLabel { outcome });
        }
        for &class in StatusClass::ALL.iter().filter(|c| **c != StatusClass::Informational) {
            metrics.connectwise.0.get_or_create_owned(&ClassLabel { class });
        }
        for &reason in ImportRefusal::ALL {
            metrics.import_refusals.get_or_create_owned(&ReasonLabel { reason });
        }
        for &kind in ImportedRecord::ALL {
            metrics.import_records.get_or_create_owned(&RecordLabel { kind });
        }
        Self { registry: Arc::new(registry), ..metrics }
    }

    /// The ConnectWise client's share: its answers by status class.
    pub fn connectwise_responses(&self) -> ConnectWiseResponses {
        self.connectwise.clone()
    }

    /// The request budgets' share: their decisions by PSA system.
    pub fn request_budget_decisions(&self) -> RequestBudgetDecisions {
        self.request_budget.clone()
    }

    pub fn sign_in(&self, result: SignInResult) {
        self.sign_ins.get_or_create(&ResultLabel { result }).inc();
    }

    pub fn sign_ins(&self, result: SignInResult) -> u64 {
        self.sign_ins.get_or_create(&ResultLabel { result }).get()
    }

    pub fn delivery_attempt(&self, outcome: AttemptOutcome, took: Duration) {
        self.attempts.get_or_create(&OutcomeLabel { outcome }).observe(took.as_secs_f64());
    }

    pub fn import_stored(&self, new: u64, duplicates: u64) {
        self.import_batches.inc();
        self.import_records.get_or_create(&RecordLabel { kind: ImportedRecord::New }).inc_by(new);
        self.import_records.get_or_create(&RecordLabel { kind: ImportedRecord::Duplicate }).inc_by(duplicates);
    }

    pub fn import_refused(&self, reason: ImportRefusal) {
        self.import_refusals.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub fn http_request(&self, route: &str, status: u16) {
        self.http_requests.get_or_create(&HttpLabels { route: route.to_owned(), status }).inc();
    }

    /// Sets the delivery gauges: counts by stored state (states absent from `by_state` drop out), the due queue
    /// and its oldest entry's age.
    pub fn set_queue(&self, by_state: &[(String, i64)], due: i64, oldest_due_age: Duration) {
        self.deliveries.clear();
        for (state, count) in by_state {
            self.deliveries.get_or_create(&StateLabel { state: state.clone() }).set(*count);
        }
        self.queue_depth.set(due);
        self.oldest_due_age.set(oldest_due_age.as_secs_f64());
    }

    pub fn set_hash_slots(&self, in_use: usize, capacity: usize) {
        self.hash_slots_in_use.set(i64::try_from(in_use).unwrap_or(i64::MAX));
        self.hash_slots.set(i64::try_from(capacity).unwrap_or(i64::MAX));
    }

    /// Every metric in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(err) = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry) {
            tracing::error!(error = %err, "could not encode the metrics");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample `line_start` (name and labels as encoded), if present.
    fn sample(text: &str, line_start: &str) -> Option<f64> {
        text.lines().find_map(|line| line.strip_prefix(line_start)?.trim().parse().ok())
    }

    #[test]
    fn every_family_is_declared_and_labelled() {
        let metrics = Metrics::new();
        metrics.sign_in(SignInResult::Failure);
        metrics.sign_in(SignInResult::Failure);
        metrics.delivery_attempt(AttemptOutcome::Delivered, Duration::from_millis(30));
        metrics.connectwise_responses().record(StatusClass::of(201));
        metrics.connectwise_responses().record(StatusClass::TransportError);
        metrics.import_stored(3, 1);
        metrics.request_budget_decisions().record("autotask", BudgetDecision::Refused);
        metrics.import_refused(ImportRefusal::TooLarge);
        metrics.http_request("/integrations/{id}/deliveries", 200);
        metrics.set_queue(&[("pending".into(), 4), ("failed".into(), 1)], 2, Duration::from_millis(1500));
        metrics.set_hash_slots(1, 4);
        let text = metrics.encode();
        for family in [
            "# TYPE dwid_deliveries gauge",
            "# TYPE dwid_delivery_queue_depth gauge",
            "# TYPE dwid_delivery_oldest_due_age_seconds gauge",
            "# TYPE dwid_delivery_attempt_duration_seconds histogram",
            "# TYPE dwid_connectwise_responses_total counter",
            "# TYPE dwid_import_records_total counter",
            "# TYPE dwid_psa_request_budget_decisions_total counter",
            "# TYPE dwid_import_batches_total counter",
            "# TYPE dwid_import_refusals_total counter",
            "# TYPE dwid_sign_ins_total counter",
            "# TYPE dwid_sign_in_hash_slots_in_use gauge",
            "# TYPE dwid_http_requests_total counter",
        ] {
            assert!(text.contains(family), "{family} missing from\n{text}");
        }
        assert_eq!(sample(&text, "dwid_sign_ins_total{result=\"failure\"}"), Some(2.0), "{text}");
        assert_eq!(sample(&text, "dwid_connectwise_responses_total{class=\"2xx\"}"), Some(1.0));
        assert_eq!(sample(&text, "dwid_connectwise_responses_total{class=\"transport_error\"}"), Some(1.0));
        assert_eq!(sample(&text, "dwid_delivery_attempt_duration_seconds_count{outcome=\"delivered\"}"), Some(1.0));
        assert_eq!(sample(&text, "dwid_import_records_total{kind=\"new\"}"), Some(3.0));
        assert_eq!(
            sample(&text, "dwid_psa_request_budget_decisions_total{system=\"autotask\",decision=\"refused\"}"),
            Some(1.0)
        );
        assert_eq!(sample(&text, "dwid_import_refusals_total{reason=\"too_large\"}"), Some(1.0));
        assert_eq!(
            sample(&text, "dwid_http_requests_total{route=\"/integrations/{id}/deliveries\",status=\"200\"}"),
            Some(1.0)
        );
        assert_eq!(sample(&text, "dwid_deliveries{state=\"pending\"}"), Some(4.0));
        assert_eq!(sample(&text, "dwid_delivery_oldest_due_age_seconds"), Some(1.5));
        assert_eq!(sample(&text, "dwid_sign_in_hash_slots_in_use"), Some(1.0));
        // A state absent from a later scrape drops from the gauge family.
        metrics.set_queue(&[("failed".into(), 1)], 0, Duration::ZERO);
        assert_eq!(sample(&metrics.encode(), "dwid_deliveries{state=\"pending\"}"), None);
        // The closed label sets are there before their first event.
        let fresh = Metrics::new().encode();
        assert_eq!(sample(&fresh, "dwid_sign_ins_total{result=\"throttled\"}"), Some(0.0), "{fresh}");
        assert_eq!(sample(&fresh, "dwid_connectwise_responses_total{class=\"5xx\"}"), Some(0.0));
        assert_eq!(sample(&fresh, "dwid_delivery_attempt_duration_seconds_count{outcome=\"retry\"}"), Some(0.0));
        assert_eq!(sample(&fresh, "dwid_import_refusals_total{reason=\"rate_limited\"}"), Some(0.0));
    }

    #[test]
    fn status_classes() {
        assert_eq!(StatusClass::of(204), StatusClass::Success);
        assert_eq!(StatusClass::of(302), StatusClass::Redirection);
        assert_eq!(StatusClass::of(429), StatusClass::ClientError);
        assert_eq!(StatusClass::of(503), StatusClass::ServerError);
    }
}
