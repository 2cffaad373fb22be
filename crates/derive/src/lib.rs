//! `#[derive(Module)]`: writes a struct's [`ModuleState`] implementation — the walk over
//! its parameters, buffers and submodules with PyTorch's dotted names, and train/eval
//! propagation — so a custom module cannot forget a field.
//!
//! Each field is classified by its type as written:
//! - `Param<…>` is a parameter, `Buffer<…>` a buffer;
//! - `Option<X>` and `Vec<X>` hold whatever `X` is (a `Vec`'s entries are named
//!   `0`, `1`, …, as in PyTorch's `ModuleList`);
//! - numbers, `bool`, `char`, `String`, arrays and tuples are plain data, and so is any
//!   field marked `#[module(skip)]` (flags, RNGs, attribute structs);
//! - any other field is a submodule and must implement `ModuleState`.
//!
//! The element type is the struct's first type parameter; without one, the argument of
//! its first `Param`/`Buffer` field (`f32` for a bare `Param`); a struct with neither
//! works for every element type. `#[module(crate = "chainrule::nn")]` names the nn crate
//! when it is reached through the `chainrule` facade (the default is `::chainrule_nn`).
//!
//! [`ModuleState`]: https://docs.rs/chainrule-nn/latest/chainrule_nn/trait.ModuleState.html

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{format_ident, quote};
use syn::{
    parse_macro_input, Data, DeriveInput, Fields, GenericArgument, LitStr, Path, PathArguments,
    Type,
};

/// Derives `ModuleState` for a struct; see the crate documentation for the rules.
#[proc_macro_derive(Module, attributes(module))]
pub fn derive_module(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// What a field holds.
enum Kind {
    Param,
    Buffer,
    Module(Box<Type>),
    Skip,
}

/// How a field is reached: directly, through an `Option`, or as each entry of a `Vec`.
#[derive(Clone, Copy)]
enum Wrap {
    Plain,
    Option,
    Vec,
}

struct Field {
    access: Tokens,
    name: String,
    kind: Kind,
    wrap: Wrap,
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        _ => None,
    }
}

/// The single type argument of `Option<X>` / `Vec<X>` / `Param<X>`.
fn type_argument(seg: &syn::PathSegment) -> Option<&Type> {
    match &seg.arguments {
        PathArguments::AngleBracketed(a) => a.args.iter().find_map(|g| match g {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    }
}

/// Types that can never be modules: numbers, `bool`, `char`, `String`, arrays, tuples.
fn is_plain(ty: &Type) -> bool {
    const PLAIN: [&str; 16] = [
        "f32", "f64", "usize", "isize", "u8", "u16", "u32", "u64", "u128", "i8", "i16", "i32",
        "i64", "i128", "bool", "String",
    ];
    match ty {
        Type::Array(_) | Type::Tuple(_) => true,
        _ => last_segment(ty)
            .is_some_and(|s| PLAIN.iter().any(|p| s.ident == p) || s.ident == "char"),
    }
}

fn classify(ty: &Type) -> (Kind, Wrap) {
    let inner = |seg: &syn::PathSegment| type_argument(seg).cloned();
    if is_plain(ty) {
        return (Kind::Skip, Wrap::Plain);
    }
    match last_segment(ty) {
        Some(seg) if seg.ident == "Option" || seg.ident == "Vec" => {
            let wrap = if seg.ident == "Option" {
                Wrap::Option
            } else {
                Wrap::Vec
            };
            match inner(seg) {
                Some(t) => (classify(&t).0, wrap),
                None => (Kind::Module(Box::new(ty.clone())), Wrap::Plain),
            }
        }
        Some(seg) if seg.ident == "Param" => (Kind::Param, Wrap::Plain),
        Some(seg) if seg.ident == "Buffer" => (Kind::Buffer, Wrap::Plain),
        _ => (Kind::Module(Box::new(ty.clone())), Wrap::Plain),
    }
}

/// The element type a `Param<X>` / `Buffer<X>` field (possibly wrapped) fixes.
fn element_of(ty: &Type) -> Option<Tokens> {
    let seg = last_segment(ty)?;
    if seg.ident == "Option" || seg.ident == "Vec" {
        return element_of(type_argument(seg)?);
    }
    if seg.ident == "Param" || seg.ident == "Buffer" {
        return Some(match type_argument(seg) {
            Some(t) => quote!(#t),
            None => quote!(f32),
        });
    }
    None
}

/// `#[module(...)]` options: `skip` on fields; `crate = "path"` on the struct.
fn has_skip(attrs: &[syn::Attribute]) -> syn::Result<bool> {
    let mut skip = false;
    for a in attrs.iter().filter(|a| a.path().is_ident("module")) {
        a.parse_nested_meta(|m| {
            if m.path.is_ident("skip") {
                skip = true;
                Ok(())
            } else {
                Err(m.error("expected `skip`"))
            }
        })?;
    }
    Ok(skip)
}

fn crate_path(attrs: &[syn::Attribute]) -> syn::Result<Path> {
    let mut path: Path = syn::parse_quote!(::chainrule_nn);
    for a in attrs.iter().filter(|a| a.path().is_ident("module")) {
        a.parse_nested_meta(|m| {
            if m.path.is_ident("crate") {
                let s: LitStr = m.value()?.parse()?;
                path = s.parse()?;
                Ok(())
            } else {
                Err(m.error("expected `crate = \"path::to::nn\"`"))
            }
        })?;
    }
    Ok(path)
}

fn expand(input: &DeriveInput) -> syn::Result<Tokens> {
    let krate = crate_path(&input.attrs)?;
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "#[derive(Module)] works on structs",
        ));
    };
    let mut fields = Vec::new();
    let members: Vec<(Tokens, String, &syn::Field)> = match &data.fields {
        Fields::Named(f) => f
            .named
            .iter()
            .map(|f| {
                let id = f.ident.clone().expect("named");
                (quote!(#id), id.to_string(), f)
            })
            .collect(),
        Fields::Unnamed(f) => f
            .unnamed
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let idx = syn::Index::from(i);
                (quote!(#idx), i.to_string(), f)
            })
            .collect(),
        Fields::Unit => Vec::new(),
    };
    for (access, name, f) in &members {
        let (kind, wrap) = if has_skip(&f.attrs)? {
            (Kind::Skip, Wrap::Plain)
        } else {
            classify(&f.ty)
        };
        fields.push(Field {
            access: access.clone(),
            name: name.clone(),
            kind,
            wrap,
        });
    }

    // the element type, and the impl's generics
    let first_type_param = input.generics.type_params().next().map(|p| p.ident.clone());
    let fixed = members
        .iter()
        .filter(|(_, _, f)| !has_skip(&f.attrs).unwrap_or(false))
        .find_map(|(_, _, f)| element_of(&f.ty));
    let generic_element = format_ident!("__ChainruleElement");
    let (element, extra_param) = match (&first_type_param, fixed) {
        (Some(t), _) => (quote!(#t), None),
        (None, Some(e)) => (e, None),
        (None, None) => (quote!(#generic_element), Some(generic_element.clone())),
    };
    let name = &input.ident;
    let (_, ty_generics, where_clause) = input.generics.split_for_impl();
    // the struct's parameters without their defaults (not allowed on an impl)
    let mut params: Vec<Tokens> = input
        .generics
        .params
        .iter()
        .map(|p| match p {
            syn::GenericParam::Type(t) => {
                let mut t = t.clone();
                t.eq_token = None;
                t.default = None;
                quote!(#t)
            }
            syn::GenericParam::Const(c) => {
                let mut c = c.clone();
                c.eq_token = None;
                c.default = None;
                quote!(#c)
            }
            other => quote!(#other),
        })
        .collect();
    if let Some(e) = &extra_param {
        params.push(quote!(#e: #krate::__private::Element));
    }
    let mut bounds: Vec<Tokens> = where_clause
        .map(|w| w.predicates.iter().map(|p| quote!(#p)).collect())
        .unwrap_or_default();
    for f in &fields {
        // the type inside any Option/Vec
        if let Kind::Module(ty) = &f.kind {
            bounds.push(quote!(#ty: #krate::ModuleState<#element>));
        }
    }

    // `call(item, name)` for every field `want` accepts; names get `suffix` appended
    let visit = |want: fn(&Kind) -> bool,
                 suffix: &str,
                 call: &dyn Fn(&Tokens, &Tokens) -> Tokens|
     -> Tokens {
        let arms = fields.iter().filter(|f| want(&f.kind)).map(|f| {
            let (access, label) = (&f.access, &f.name);
            match f.wrap {
                Wrap::Plain => {
                    let name = quote!(&::std::format!("{}{}{}", prefix, #label, #suffix));
                    let body = call(&quote!(&self.#access), &name);
                    quote!({ #body })
                }
                Wrap::Option => {
                    let name = quote!(&::std::format!("{}{}{}", prefix, #label, #suffix));
                    let body = call(&quote!(item), &name);
                    quote!(if let ::std::option::Option::Some(item) = &self.#access { #body })
                }
                Wrap::Vec => {
                    let name = quote!(&::std::format!("{}{}.{}{}", prefix, #label, index, #suffix));
                    let body = call(&quote!(item), &name);
                    quote!(for (index, item) in self.#access.iter().enumerate() { #body })
                }
            }
        });
        quote!(#(#arms)*)
    };
    let is_module = |k: &Kind| matches!(k, Kind::Module(_));
    let own_params = visit(
        |k| matches!(k, Kind::Param),
        "",
        &|item, name| quote!(f(#name, #item);),
    );
    let sub_params = visit(
        is_module,
        ".",
        &|item, name| quote!(#krate::ModuleState::<#element>::visit_params(#item, #name, f);),
    );
    let own_buffers = visit(
        |k| matches!(k, Kind::Buffer),
        "",
        &|item, name| quote!(f(#name, #item);),
    );
    let sub_buffers = visit(
        is_module,
        ".",
        &|item, name| quote!(#krate::ModuleState::<#element>::visit_buffers(#item, #name, f);),
    );
    let children = visit(is_module, "", &|item, name| quote!(f(#name, #item);));
    let params_body = quote!(#own_params #sub_params);
    let buffers_body = quote!(#own_buffers #sub_buffers);
    let children_body = children;
    let kind = LitStr::new(&name.to_string(), Span::call_site());
    let unused = |body: &Tokens| {
        if body.is_empty() {
            quote!(let _ = (prefix, f);)
        } else {
            quote!()
        }
    };
    let (pu, bu, cu) = (
        unused(&params_body),
        unused(&buffers_body),
        unused(&children_body),
    );
    Ok(quote! {
        #[automatically_derived]
        impl<#(#params),*> #krate::ModuleState<#element> for #name #ty_generics
        where #(#bounds,)*
        {
            fn kind(&self) -> &'static str {
                #kind
            }
            fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &#krate::__private::Param<#element>)) {
                #pu
                #params_body
            }
            fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(&str, &#krate::Buffer<#element>)) {
                #bu
                #buffers_body
            }
            fn visit_children(&self, prefix: &str, f: &mut dyn FnMut(&str, &dyn #krate::ModuleState<#element>)) {
                #cu
                #children_body
            }
        }
    })
}
