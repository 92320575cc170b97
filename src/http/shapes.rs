//! Bodies whose fields depend on one another (a grant type and its parameters, a TOTP or a
//! recovery code, a staff or a patient invitation, a care or a staff conversation): the shapes
//! each may take, which the OpenAPI document states as a `oneOf` beside the fields the body's
//! type declares. utoipa's attributes describe fields one at a time; these rules span several,
//! and the server refuses a body that takes none of its shapes.

use serde_json::Value;
use utoipa::openapi::schema::{
    AllOfBuilder, KnownFormat, Object, ObjectBuilder, OneOfBuilder, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{RefOr, Schema};

/// One shape of a body: the fields it requires and what each must be, and the fields it leaves
/// out (absent or null). Fields it does not name follow the body's own schema.
#[derive(Default)]
pub struct Shape(ObjectBuilder);

impl Shape {
    /// A shape that requires nothing yet.
    pub fn new() -> Self {
        Self(ObjectBuilder::new())
    }

    /// `field` is required and a string (not null).
    pub fn string(self, field: &str) -> Self {
        self.required(field, ObjectBuilder::new().schema_type(Type::String))
    }

    /// `field` is required and one of `values`.
    pub fn value<const N: usize>(self, field: &str, values: [&str; N]) -> Self {
        self.required(field, ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values)))
    }

    /// `field` is required and a UUID.
    pub fn uuid(self, field: &str) -> Self {
        let uuid =
            ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)));
        self.required(field, uuid)
    }

    /// `field` is absent, null or one of `values`.
    pub fn optional_value<const N: usize>(self, field: &str, values: [&str; N]) -> Self {
        let values = values.into_iter().map(Value::from).chain([Value::Null]);
        let schema = ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .enum_values(Some(values));
        Self(self.0.property(field, schema))
    }

    /// `field` is absent or null.
    pub fn without(self, field: &str) -> Self {
        Self(self.0.property(field, ObjectBuilder::new().schema_type(Type::Null)))
    }

    fn required(self, field: &str, schema: ObjectBuilder) -> Self {
        Self(self.0.property(field, schema).required(field))
    }

    fn build(self) -> Object {
        self.0.build()
    }
}

/// The shapes of one body, as its type lists them.
pub type Shapes = fn() -> Vec<Shape>;

/// `schema` (a body's own) with the rule that it takes exactly one of `shapes`.
pub fn one_of(schema: RefOr<Schema>, shapes: Vec<Shape>) -> RefOr<Schema> {
    let shapes = shapes.into_iter().fold(OneOfBuilder::new(), |one_of, shape| one_of.item(shape.build()));
    RefOr::T(Schema::AllOf(AllOfBuilder::new().item(schema).item(shapes).build()))
}
