//! Every text the console shows, one table per language. French is the
//! default (the portal's language); `?lang=en` or the browser's
//! Accept-Language switches to English, and a cookie remembers `?lang`.

use crate::core::{approval::RequestState, change::ChangeKind, run::RunOutcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Fr,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The first of French or English in an Accept-Language header, by
    /// order of appearance (browsers list them by preference).
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        header.split(',').find_map(|part| {
            let tag = part.split(';').next()?.trim();
            Lang::parse(tag.split('-').next()?)
        })
    }

    pub fn state(self, s: RequestState) -> &'static str {
        use RequestState::*;
        match (self, s) {
            (Lang::Fr, Held) => "retenue par un garde-fou",
            (Lang::Fr, Pending) => "en attente",
            (Lang::Fr, Approved) => "approuvée",
            (Lang::Fr, Refused) => "refusée",
            (Lang::Fr, Superseded) => "remplacée",
            (Lang::Fr, Expired) => "expirée",
            (Lang::Fr, Applied) => "appliquée",
            (Lang::En, s) => s.as_str(),
        }
    }

    pub fn kind(self, k: ChangeKind) -> &'static str {
        use ChangeKind::*;
        match (self, k) {
            (Lang::Fr, Attach) => "rattachement",
            (Lang::Fr, Detach) => "détachement",
            (Lang::Fr, Move) => "changement de service",
            (Lang::Fr, Rights) => "habilitations",
            (Lang::En, k) => k.as_str(),
        }
    }

    pub fn outcome(self, o: RunOutcome) -> &'static str {
        match (self, o) {
            (Lang::Fr, RunOutcome::Done) => "terminée",
            (Lang::Fr, RunOutcome::Held) => "retenue par un garde-fou",
            (Lang::Fr, RunOutcome::Rejected) => "source rejetée",
            (Lang::En, RunOutcome::Done) => "done",
            (Lang::En, RunOutcome::Held) => "held by a guard",
            (Lang::En, RunOutcome::Rejected) => "source rejected",
        }
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::Fr => &FR,
            Lang::En => &EN,
        }
    }
}

pub struct Texts {
    pub app: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub bad_credentials: &'static str,
    pub too_many_attempts: &'static str,
    pub queue: &'static str,
    pub pending: &'static str,
    pub runs: &'static str,
    pub users: &'static str,
    pub structure: &'static str,
    pub service: &'static str,
    pub kind: &'static str,
    pub state: &'static str,
    pub all: &'static str,
    pub search: &'static str,
    pub search_hint: &'static str,
    pub sort: &'static str,
    pub descending: &'static str,
    pub filter: &'static str,
    pub description: &'static str,
    pub requester: &'static str,
    pub date: &'static str,
    pub user: &'static str,
    pub name: &'static str,
    pub before: &'static str,
    pub after: &'static str,
    pub reason: &'static str,
    pub facts: &'static str,
    pub manager: &'static str,
    pub decided_by: &'static str,
    pub decided_at: &'static str,
    pub motive: &'static str,
    pub comment: &'static str,
    pub history: &'static str,
    pub by: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    pub approve: &'static str,
    pub refuse: &'static str,
    pub motive_required: &'static str,
    pub comment_optional: &'static str,
    pub page: &'static str,
    pub previous: &'static str,
    pub next: &'static str,
    pub results: &'static str,
    pub nothing: &'static str,
    pub selected: &'static str,
    pub all_matching: &'static str,
    pub bulk_result: &'static str,
    pub bulk_none_applied: &'static str,
    pub nothing_selected: &'static str,
    pub back_to_queue: &'static str,
    pub decided: &'static str,
    pub run: &'static str,
    pub outcome: &'static str,
    pub started: &'static str,
    pub sources: &'static str,
    pub message: &'static str,
    pub reports: &'static str,
    pub counts: &'static str,
    pub rights: &'static str,
    pub export: &'static str,
    pub structure_level: &'static str,
    pub not_found: &'static str,
    pub forbidden: &'static str,
    pub bad_csrf: &'static str,
    pub error: &'static str,
    pub sign_in_with: &'static str,
    pub or_with_password: &'static str,
    pub signed_in: &'static str,
    pub continue_: &'static str,
    pub back_to_sign_in: &'static str,
    pub oidc_flow_lost: &'static str,
    pub oidc_provider_refused: &'static str,
    pub oidc_unreachable: &'static str,
    pub oidc_code_rejected: &'static str,
    pub oidc_invalid_token: &'static str,
    pub oidc_no_email: &'static str,
    pub oidc_unverified: &'static str,
    pub oidc_no_account: &'static str,
    pub reports_withheld: &'static str,
}

pub static FR: Texts = Texts {
    app: "chorus-sync — Approbations",
    sign_in: "Se connecter",
    sign_out: "Se déconnecter",
    email: "Adresse électronique",
    password: "Mot de passe",
    bad_credentials: "Adresse ou mot de passe incorrect.",
    too_many_attempts: "Trop d'essais : réessayez dans une minute.",
    queue: "Approbations",
    pending: "en attente",
    runs: "Exécutions",
    users: "Utilisateurs",
    structure: "Structure",
    service: "Service",
    kind: "Type",
    state: "Statut",
    all: "Tous",
    search: "Rechercher",
    search_hint: "nom ou adresse",
    sort: "Trier par",
    descending: "décroissant",
    filter: "Filtrer",
    description: "Description",
    requester: "Demandeur",
    date: "Date",
    user: "Utilisateur",
    name: "Nom",
    before: "Avant",
    after: "Après",
    reason: "Motif de la demande",
    facts: "Faits",
    manager: "Gestionnaire principal",
    decided_by: "Décidé par",
    decided_at: "Décidé le",
    motive: "Motif du refus",
    comment: "Commentaire",
    history: "Historique",
    by: "Par",
    from: "De",
    to: "Vers",
    approve: "Approuver",
    refuse: "Refuser",
    motive_required: "Un refus doit être motivé : le motif est obligatoire.",
    comment_optional: "Commentaire (facultatif)",
    page: "Page",
    previous: "Précédente",
    next: "Suivante",
    results: "résultat(s)",
    nothing: "Aucune demande.",
    selected: "Demandes cochées",
    all_matching: "Toutes les demandes à décider correspondant au filtre (en attente, ou retenues si le filtre le dit)",
    bulk_result: "Résultat de la décision groupée",
    bulk_none_applied: "Rien n'a été modifié : corrigez ou retirez les demandes en erreur.",
    nothing_selected: "Aucune demande sélectionnée.",
    back_to_queue: "Retour aux approbations",
    decided: "Décision enregistrée.",
    run: "Exécution",
    outcome: "Résultat",
    started: "Début",
    sources: "Sources",
    message: "Message",
    reports: "Rapports",
    counts: "Rattacher / détacher / déplacer / droits",
    rights: "Habilitations",
    export: "Exporter",
    structure_level: "(maille structure)",
    not_found: "Introuvable.",
    forbidden: "Accès refusé.",
    bad_csrf: "Formulaire expiré ou invalide : rechargez la page et recommencez.",
    error: "Erreur",
    sign_in_with: "Se connecter avec",
    or_with_password: "ou avec votre adresse et votre mot de passe :",
    signed_in: "Vous êtes connecté.",
    continue_: "Continuer",
    back_to_sign_in: "Retour à la connexion",
    oidc_flow_lost: "Cette connexion a expiré ou a été commencée dans un autre navigateur : recommencez.",
    oidc_provider_refused: "Le fournisseur d'identité a refusé la connexion.",
    oidc_unreachable: "Le fournisseur d'identité ne répond pas : réessayez plus tard, ou connectez-vous avec votre mot de passe.",
    oidc_code_rejected: "Le fournisseur d'identité n'a pas accepté cette connexion (déjà utilisée ou expirée) : recommencez.",
    oidc_invalid_token: "La réponse du fournisseur d'identité n'est pas valable : connexion refusée.",
    oidc_no_email: "Le fournisseur d'identité n'a pas transmis votre adresse électronique : connexion refusée.",
    oidc_unverified: "Votre adresse électronique n'est pas vérifiée chez le fournisseur d'identité : connexion refusée.",
    oidc_no_account: "Cette adresse n'est ni gestionnaire principal ni délégué d'une structure gérée ici : pas de compte.",
    reports_withheld: "Couvre aussi d'autres structures : rapports réservés à qui décide pour toutes.",
};

pub static EN: Texts = Texts {
    app: "chorus-sync — Approvals",
    sign_in: "Sign in",
    sign_out: "Sign out",
    email: "E-mail address",
    password: "Password",
    bad_credentials: "Wrong address or password.",
    too_many_attempts: "Too many attempts: try again in a minute.",
    queue: "Approvals",
    pending: "pending",
    runs: "Runs",
    users: "Users",
    structure: "Structure",
    service: "Service",
    kind: "Kind",
    state: "State",
    all: "All",
    search: "Search",
    search_hint: "name or address",
    sort: "Sort by",
    descending: "descending",
    filter: "Filter",
    description: "Description",
    requester: "Requester",
    date: "Date",
    user: "User",
    name: "Name",
    before: "Before",
    after: "After",
    reason: "Reason",
    facts: "Facts",
    manager: "Main manager",
    decided_by: "Decided by",
    decided_at: "Decided at",
    motive: "Refusal motive",
    comment: "Comment",
    history: "History",
    by: "By",
    from: "From",
    to: "To",
    approve: "Approve",
    refuse: "Refuse",
    motive_required: "A refusal needs a motive: it is required.",
    comment_optional: "Comment (optional)",
    page: "Page",
    previous: "Previous",
    next: "Next",
    results: "result(s)",
    nothing: "No request.",
    selected: "Checked requests",
    all_matching: "Every undecided request matching the filter (pending, or held when filtered so)",
    bulk_result: "Bulk decision result",
    bulk_none_applied: "Nothing was changed: fix or remove the requests in error.",
    nothing_selected: "No request selected.",
    back_to_queue: "Back to approvals",
    decided: "Decision recorded.",
    run: "Run",
    outcome: "Outcome",
    started: "Started",
    sources: "Sources",
    message: "Message",
    reports: "Reports",
    counts: "Attach / detach / move / rights",
    rights: "Rights",
    export: "Export",
    structure_level: "(structure level)",
    not_found: "Not found.",
    forbidden: "Forbidden.",
    bad_csrf: "Expired or invalid form: reload the page and try again.",
    error: "Error",
    sign_in_with: "Sign in with",
    or_with_password: "or with your address and password:",
    signed_in: "You are signed in.",
    continue_: "Continue",
    back_to_sign_in: "Back to sign-in",
    oidc_flow_lost: "This sign-in expired or was started in another browser: start again.",
    oidc_provider_refused: "The identity provider refused the sign-in.",
    oidc_unreachable: "The identity provider does not answer: try again later, or sign in with your password.",
    oidc_code_rejected: "The identity provider did not accept this sign-in (already used or expired): start again.",
    oidc_invalid_token: "The identity provider's answer is not valid: sign-in refused.",
    oidc_no_email: "The identity provider did not send your e-mail address: sign-in refused.",
    oidc_unverified: "Your e-mail address is not verified at the identity provider: sign-in refused.",
    oidc_no_account: "This address is neither the main manager nor a delegate of a structure managed here: no account.",
    reports_withheld: "Also covers other structures: reports for those who decide for all of them.",
};

#[cfg(test)]
mod tests {
    use super::Lang;

    #[test]
    fn accept_language_picks_the_first_known_language() {
        for (header, expect) in [
            ("en-GB,en;q=0.9,fr;q=0.8", Some(Lang::En)),
            ("fr-FR,fr;q=0.9", Some(Lang::Fr)),
            ("de-DE, en;q=0.5", Some(Lang::En)),
            ("de, it", None),
            ("", None),
        ] {
            assert_eq!(Lang::from_accept_language(header), expect, "{header:?}");
        }
    }
}
