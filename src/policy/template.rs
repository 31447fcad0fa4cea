//! What the policy needs to know about a message template: its category, its review status as
//! Meta last reported it, and how many parameters each component takes.

use serde::{Deserialize, Serialize};

/// A template's category as Meta reports it (`MARKETING`, `UTILITY`, `AUTHENTICATION`).
/// Serialized as Meta's upper-case string; an unknown category is kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Category {
    /// Promotions, offers, newsletters. Subject to the marketing opt-out.
    Marketing,
    /// Updates about a transaction or account the customer started.
    Utility,
    /// One-time passcodes.
    Authentication,
    /// A category this version does not know. Treated like marketing for the marketing opt-out.
    Other(String),
}

impl Category {
    /// Meta's spelling (`MARKETING`...), or the unknown value as received.
    pub fn as_str(&self) -> &str {
        match self {
            Category::Marketing => "MARKETING",
            Category::Utility => "UTILITY",
            Category::Authentication => "AUTHENTICATION",
            Category::Other(other) => other,
        }
    }

    /// Whether the marketing opt-out applies. True for marketing and, to be safe, for any
    /// category this version does not know.
    pub fn respects_marketing_opt_out(&self) -> bool {
        match self {
            Category::Marketing | Category::Other(_) => true,
            Category::Utility | Category::Authentication => false,
        }
    }
}

impl From<&str> for Category {
    fn from(value: &str) -> Self {
        match value.to_ascii_uppercase().as_str() {
            "MARKETING" => Category::Marketing,
            "UTILITY" => Category::Utility,
            "AUTHENTICATION" => Category::Authentication,
            _ => Category::Other(value.to_owned()),
        }
    }
}

impl From<String> for Category {
    fn from(value: String) -> Self {
        Category::from(value.as_str())
    }
}

impl From<Category> for String {
    fn from(value: Category) -> Self {
        value.as_str().to_owned()
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A template's review status as Meta last reported it (template API or
/// `message_template_status_update`). Serialized as Meta's upper-case string; an unknown
/// status (`IN_APPEAL`, `PENDING_DELETION`, `LIMIT_EXCEEDED`, `ARCHIVED`...) is kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum TemplateStatus {
    /// May be sent.
    Approved,
    /// Under review; sends wait.
    Pending,
    /// Paused for low quality; sends wait until it is approved again.
    Paused,
    /// Rejected in review; never sent.
    Rejected,
    /// Disabled (paused too often); never sent.
    Disabled,
    /// Deleted; never sent.
    Deleted,
    /// Any other status; never sent.
    Other(String),
}

impl TemplateStatus {
    /// Meta's spelling (`APPROVED`...), or the unknown value as received.
    pub fn as_str(&self) -> &str {
        match self {
            TemplateStatus::Approved => "APPROVED",
            TemplateStatus::Pending => "PENDING",
            TemplateStatus::Paused => "PAUSED",
            TemplateStatus::Rejected => "REJECTED",
            TemplateStatus::Disabled => "DISABLED",
            TemplateStatus::Deleted => "DELETED",
            TemplateStatus::Other(other) => other,
        }
    }
}

impl From<&str> for TemplateStatus {
    fn from(value: &str) -> Self {
        match value.to_ascii_uppercase().as_str() {
            "APPROVED" => TemplateStatus::Approved,
            "PENDING" => TemplateStatus::Pending,
            "PAUSED" => TemplateStatus::Paused,
            "REJECTED" => TemplateStatus::Rejected,
            "DISABLED" => TemplateStatus::Disabled,
            "DELETED" => TemplateStatus::Deleted,
            _ => TemplateStatus::Other(value.to_owned()),
        }
    }
}

impl From<String> for TemplateStatus {
    fn from(value: String) -> Self {
        TemplateStatus::from(value.as_str())
    }
}

impl From<TemplateStatus> for String {
    fn from(value: TemplateStatus) -> Self {
        value.as_str().to_owned()
    }
}

impl std::fmt::Display for TemplateStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One template of the business account, as known from Meta's template API and webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateInfo {
    /// Template name (`order_update`).
    pub name: String,
    /// Language code (`en_US`).
    pub language: String,
    /// Category as Meta last reported it.
    pub category: Category,
    /// Review status as Meta last reported it.
    pub status: TemplateStatus,
    /// Number of `{{n}}` parameters in the body.
    pub body_params: usize,
    /// Number of parameters in the header (0 or 1 for text, 1 for media headers).
    pub header_params: usize,
    /// Number of parameters per button, by button index (0 for a button without one).
    pub button_params: Vec<usize>,
}

impl TemplateInfo {
    /// The parameter counts a send of this template must carry.
    pub fn expected_params(&self) -> ParamCounts {
        ParamCounts {
            body: self.body_params,
            header: self.header_params,
            buttons: self.button_params.clone(),
        }
    }
}

/// Parameter counts of a rendered send, per component.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamCounts {
    /// Body parameters.
    pub body: usize,
    /// Header parameters.
    pub header: usize,
    /// Parameters per button, by button index. A missing index counts as 0.
    #[serde(default)]
    pub buttons: Vec<usize>,
}

impl ParamCounts {
    /// Whether two sets of counts agree. Buttons are compared by index, a missing index
    /// counting as 0, because a send only names the buttons that take parameters.
    pub fn matches(&self, other: &ParamCounts) -> bool {
        let longest = self.buttons.len().max(other.buttons.len());
        self.body == other.body
            && self.header == other.header
            && (0..longest).all(|i| {
                self.buttons.get(i).copied().unwrap_or(0)
                    == other.buttons.get(i).copied().unwrap_or(0)
            })
    }
}

impl std::fmt::Display for ParamCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} body, {} header", self.body, self.header)?;
        let button_total: usize = self.buttons.iter().sum();
        if button_total > 0 {
            write!(f, ", {button_total} button")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_category_use_metas_spelling_and_keep_unknown_values() {
        let status: TemplateStatus = serde_json::from_str("\"IN_APPEAL\"").unwrap();
        assert_eq!(status, TemplateStatus::Other("IN_APPEAL".into()));
        assert_eq!(serde_json::to_string(&status).unwrap(), "\"IN_APPEAL\"");
        let paused: TemplateStatus = serde_json::from_str("\"PAUSED\"").unwrap();
        assert_eq!(paused, TemplateStatus::Paused);
        let category: Category = serde_json::from_str("\"utility\"").unwrap();
        assert_eq!(category, Category::Utility);
        assert_eq!(serde_json::to_string(&category).unwrap(), "\"UTILITY\"");
    }

    #[test]
    fn unknown_category_respects_marketing_opt_out() {
        assert!(Category::Other("NEW_KIND".into()).respects_marketing_opt_out());
        assert!(Category::Marketing.respects_marketing_opt_out());
        assert!(!Category::Utility.respects_marketing_opt_out());
    }

    #[test]
    fn param_counts_treat_missing_buttons_as_zero() {
        let expected = ParamCounts {
            body: 2,
            header: 0,
            buttons: vec![0, 1],
        };
        let sparse = ParamCounts {
            body: 2,
            header: 0,
            buttons: vec![0, 1, 0],
        };
        assert!(expected.matches(&sparse));
        let missing_button = ParamCounts {
            body: 2,
            header: 0,
            buttons: vec![],
        };
        assert!(!expected.matches(&missing_button));
    }
}
