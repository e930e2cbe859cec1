//! The request pipeline.
