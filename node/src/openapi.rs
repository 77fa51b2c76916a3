//! What both servers' OpenAPI documents say of errors: every error status either may answer
//! any call with (`protocol::web::ERROR_STATUSES`), declared on every operation with the error
//! body (`ErrorBody`), besides the ones a route names itself. The hub compiles this same file
//! (`#[path]` in `hub/src/api/doc.rs`).

/// The utoipa modifier that declares them.
pub struct ErrorStatuses;

impl utoipa::Modify for ErrorStatuses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        for item in doc.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                for (status, what) in protocol::web::ERROR_STATUSES {
                    let body = ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build();
                    let response = ResponseBuilder::new()
                        .description(*what)
                        .content("application/json", body)
                        .build();
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert(response.into());
                }
            }
        }
    }
}
