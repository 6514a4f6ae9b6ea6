//! [`named_enum!`](crate::named_enum): a field-less enum whose variants
//! are numbered 0, 1, … in the order written and carry the lowercase names
//! that scenario files, reports and `dmesg` use.

/// Declares a field-less enum, `Variant = "name"` for each variant,
/// numbered from 0 in the order written, with `ALL` (every variant in that
/// order), `name()`, `by_name()` and a `Display` that writes the name: the
/// names are written once, in the declaration.
///
/// ```
/// klog::named_enum! {
///     /// A traffic light.
///     pub enum Light { Red = "red", Amber = "amber", Green = "green" }
/// }
/// assert_eq!(Light::ALL, [Light::Red, Light::Amber, Light::Green]);
/// assert_eq!(Light::by_name("amber"), Some(Light::Amber));
/// assert_eq!(Light::Green as u8, 2);
/// assert_eq!(Light::Red.to_string(), "red");
/// ```
#[macro_export]
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $ty:ident { $( $var:ident = $name:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis enum $ty {
            $( #[doc = concat!("`", $name, "`")] $var, )+
        }

        impl $ty {
            /// Every variant, in the order declared (by number).
            $vis const ALL: [$ty; [$($name),+].len()] = [$($ty::$var),+];

            /// The name scenario files and reports use.
            $vis fn name(self) -> &'static str {
                match self {
                    $( $ty::$var => $name, )+
                }
            }

            /// The variant called `name`.
            $vis fn by_name(name: &str) -> Option<$ty> {
                Self::ALL.iter().copied().find(|v| v.name() == name)
            }
        }

        impl core::fmt::Display for $ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}
