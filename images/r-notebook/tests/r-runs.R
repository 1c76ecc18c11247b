# R starts, computes, and reports its version.
x <- sum(1:10)
stopifnot(x == 55)
cat("R", R.version$major, R.version$minor, "computed", x, "\n")
