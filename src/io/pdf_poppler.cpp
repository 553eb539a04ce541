// TODO(pdf)
