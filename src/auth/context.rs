//! What the layer tells the handlers behind it about itself: which claims type
//! it validates into and which realm its challenges name. The axum extractors
//! read it to tell "anonymous" from "misconfigured".

use std::any::TypeId;
use std::sync::Arc;

/// Put into the extensions of every request the layer lets through.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "axum"), allow(dead_code))]
pub(crate) struct LayerContext {
    /// `TypeId` of the custom-claims type `C` of the `Claims<C>` it inserts.
    pub(crate) claims: TypeId,
    /// Its name, for the error when an extractor asks for another type.
    pub(crate) claims_name: &'static str,
    /// The realm of the layer's challenges.
    pub(crate) realm: Arc<str>,
}

#[cfg_attr(not(feature = "axum"), allow(dead_code))]
impl LayerContext {
    pub(crate) fn of<C: 'static>(realm: Arc<str>) -> Self {
        LayerContext {
            claims: TypeId::of::<C>(),
            claims_name: std::any::type_name::<C>(),
            realm,
        }
    }

    /// Whether the layer inserts `Claims<C>`.
    pub(crate) fn is<C: 'static>(&self) -> bool {
        self.claims == TypeId::of::<C>()
    }
}
