//! ServiceAccount token Secrets, as Kubernetes names them: a Secret of type
//! `kubernetes.io/service-account-token` names its account in an annotation, and the tokens
//! controller fills it with a legacy token of that account and notes the account's uid.

/// The type of a ServiceAccount token Secret.
pub const TOKEN_SECRET_TYPE: &str = "kubernetes.io/service-account-token";
/// The annotation naming a token Secret's ServiceAccount.
pub const ACCOUNT_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
/// The annotation with the uid of a token Secret's ServiceAccount.
pub const ACCOUNT_UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";
/// The label a legacy token's Secret carries once its token is refused (as Kubernetes' token
/// cleaner sets it): the date since when.
pub const INVALID_SINCE_LABEL: &str = "kubernetes.io/legacy-token-invalid-since";
/// The label with the last date (UTC, `YYYY-MM-DD`) a legacy token authenticated a request.
pub const LAST_USED_LABEL: &str = "kubernetes.io/legacy-token-last-used";
