//! Checking mappings against the template catalog (templates as Meta knows them).

use super::{ButtonKind, Mapping, MappingProblem};

/// What the catalog says a template send needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogTemplate {
    /// Template name.
    pub name: String,
    /// Language code of this translation.
    pub language: String,
    /// Body parameters a send must give (`{{1}}`… or named).
    pub body_params: usize,
    /// Header parameters a send must give: 1 for a media header or a text header with a
    /// variable, else 0.
    pub header_params: usize,
    /// Per button, in template order: parameters a send must give (1 for a dynamic URL, else 0).
    pub button_params: Vec<usize>,
}

impl From<(String, String, usize, usize, Vec<usize>)> for CatalogTemplate {
    /// `(name, language, body params, header params, button params)`.
    fn from(
        (name, language, body_params, header_params, button_params): (
            String,
            String,
            usize,
            usize,
            Vec<usize>,
        ),
    ) -> Self {
        Self {
            name,
            language,
            body_params,
            header_params,
            button_params,
        }
    }
}

impl Mapping {
    /// Checks this mapping's template, language and parameter counts against `catalog`.
    pub fn check_against_catalog(&self, catalog: &[CatalogTemplate]) -> Vec<MappingProblem> {
        let mut problems = Vec::new();
        let mut push = |line: usize, field: &str, message: String| {
            problems.push(MappingProblem {
                file: self.file.clone(),
                line: Some(line),
                field: field.to_owned(),
                message,
            });
        };
        let translations: Vec<&CatalogTemplate> =
            catalog.iter().filter(|t| t.name == self.template).collect();
        if translations.is_empty() {
            push(
                self.template_line,
                "template",
                format!(
                    "template {:?} is not in the template catalog",
                    self.template
                ),
            );
            return problems;
        }
        let Some(entry) = translations.iter().find(|t| t.language == self.language) else {
            let known: Vec<&str> = translations.iter().map(|t| t.language.as_str()).collect();
            push(
                self.template_line,
                "language",
                format!(
                    "template {:?} has no {:?} translation (it has: {})",
                    self.template,
                    self.language,
                    known.join(", ")
                ),
            );
            return problems;
        };
        let what = format!("template {} ({})", self.template, self.language);

        let header_given = usize::from(self.header.is_some());
        if header_given != entry.header_params {
            let line = self.header.as_ref().map_or(self.template_line, |h| h.line);
            push(
                line,
                "header",
                format!(
                    "{what} takes {} header parameter(s); the mapping gives {header_given}",
                    entry.header_params
                ),
            );
        }
        if self.body.len() != entry.body_params {
            let line = self.body.first().map_or(self.template_line, |p| p.line);
            push(
                line,
                "body",
                format!(
                    "{what} takes {} body parameter(s); the mapping gives {}",
                    entry.body_params,
                    self.body.len()
                ),
            );
        }
        for button in &self.buttons {
            match (entry.button_params.get(button.index), &button.kind) {
                (None, _) => push(
                    button.line,
                    &button.field,
                    format!(
                        "{what} has {} button(s); there is no index {}",
                        entry.button_params.len(),
                        button.index
                    ),
                ),
                (Some(0), ButtonKind::Url(_)) => push(
                    button.line,
                    &button.field,
                    format!(
                        "{what}: button {} has a fixed URL and takes no suffix",
                        button.index
                    ),
                ),
                (Some(_), _) => {}
            }
        }
        for (index, needed) in entry.button_params.iter().enumerate() {
            if *needed > 0 && !self.buttons.iter().any(|b| b.index == index) {
                push(
                    self.template_line,
                    "button",
                    format!(
                        "{what}: button {index} needs a parameter (URL suffix); add a [[button]] with index = {index}"
                    ),
                );
            }
        }
        problems
    }
}
