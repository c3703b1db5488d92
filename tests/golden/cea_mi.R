# Golden values for phb-eval's CEA with multiple imputation (cea.missing = mi_boot) and the site bootstrap:
# per-replicate OLS estimates on every imputed dataset, on the SAME replicate rows phb-eval draws, and the
# estimates pooled over imputations by Rubin's rules (mice::pool.scalar, Barnard-Rubin df).
#
# Inputs (made by tests/golden/cea_mi_make_data.py): cea_mi_imputed.csv (phb-eval's m completed datasets,
# stacked, column imp; row = person number), cea_mi_indices.csv (per group and replicate the resampled
# people as row numbers, whole arm-site clusters stacked).
# Output: cea_mi_golden.json. Run from the repository root:  Rscript tests/golden/cea_mi.R
#
# Models on each dataset (lm, aliased columns dropped):
#   ASCOT-years  (scrqol_t0 + scrqol_t1) / 2 ~ <PHB indicator(s)> + scrqol_t0 + age + sex + condition
#   QALY         qaly ~ <PHB indicator(s)> + eq5d_index_t0 + age + sex + condition
#   cost         cost_total ~ <PHB indicator(s)> + cost_indirect_pre + age + sex + condition
#   NMB          lambda * effect coefficient - cost coefficient, per effect measure and lambda
# Pooling: Q_k = the estimate on dataset k, U_k = the variance of its bootstrap replicates;
# pool.scalar(Q, U, n = number of sites, k = 1), so the complete-data df is sites - 1 as in phb-eval.

suppressPackageStartupMessages({library(mice); library(jsonlite)})
here <- "tests/golden"
imp <- read.csv(file.path(here, "cea_mi_imputed.csv"), stringsAsFactors = FALSE, na.strings = c("", "NA"))
idx <- read.csv(file.path(here, "cea_mi_indices.csv"), stringsAsFactors = FALSE)
B <- max(idx$replicate)
M <- max(imp$imp)
lambdas <- c(20000, 30000)
conf <- 0.95

prep <- function(d) {
  d <- d[order(d$row), ]
  d$sex <- factor(d$sex, levels = sort(unique(d$sex), method = "radix"))
  d$condition <- factor(d$condition, levels = sort(unique(d$condition), method = "radix"))
  d$ascot_years <- (d$scrqol_t0 + d$scrqol_t1) / 2
  d$ind_lo <- as.numeric(d$phb == 1 & !is.na(d$budget_band) & d$budget_band == "<1000")
  d$ind_hi <- as.numeric(d$phb == 1 & !is.na(d$budget_band) & d$budget_band == ">=1000")
  d
}

stat_models <- function(dd, ind, labels) {
  rhs <- paste(c(ind, "age", "sex", "condition"), collapse = " + ")
  f <- function(y, base) as.formula(paste(y, "~", rhs, "+", base))
  co <- function(y, base) unname(coef(lm(f(y, base), data = dd))[ind])
  a <- co("ascot_years", "scrqol_t0"); q <- co("qaly", "eq5d_index_t0"); ct <- co("cost_total", "cost_indirect_pre")
  out <- c()
  for (j in seq_along(ind)) {
    v <- c(a[j], q[j], ct[j], lambdas * a[j] - ct[j], lambdas * q[j] - ct[j])
    names(v) <- paste0(c("d_ascot", "d_qaly", "d_cost", paste0("nmb_ascot_years_", lambdas),
                         paste0("nmb_qaly_", lambdas)), "|", labels[j])
    out <- c(out, v)
  }
  out
}

groups <- list(
  all = list(sel = function(d) rep(TRUE, nrow(d)), ind = "phb", labels = "all"),
  budget_band = list(sel = function(d) d$phb == 0 | !is.na(d$budget_band), ind = c("ind_lo", "ind_hi"),
                     labels = c("budget_band=<1000", "budget_band=>=1000"))
)

out <- list(B = B, M = M, conf = conf, lambdas = lambdas, R_version = R.version.string,
            mice_version = as.character(packageVersion("mice")), groups = list())
for (key in names(groups)) {
  g <- groups[[key]]
  lines <- idx[idx$group == key, ]
  lines <- lines[order(lines$replicate), ]
  reps <- lapply(strsplit(lines$rows, " "), as.integer)
  per_imp <- list()
  for (k in seq_len(M)) {
    d <- prep(imp[imp$imp == k, ])
    dg <- d[g$sel(d), ]
    lev <- levels(droplevels(dg$condition))
    dg$condition <- factor(as.character(dg$condition), levels = lev)
    t0 <- stat_models(dg, g$ind, g$labels)
    tmat <- t(vapply(reps, function(rr) {
      dd <- d[rr, ]
      dd$condition <- factor(as.character(dd$condition), levels = lev)
      stat_models(dd, g$ind, g$labels)
    }, numeric(length(t0))))
    per_imp[[k]] <- list(t0 = t0, t = tmat)
    n_sites <- length(unique(dg$site))
  }
  res <- list(stats = names(per_imp[[1]]$t0), n_sites = n_sites, t0 = list(), t = list(), pooled = list())
  for (s in seq_along(res$stats)) {
    nm <- res$stats[s]
    Q <- vapply(per_imp, function(p) p$t0[[s]], numeric(1))
    U <- vapply(per_imp, function(p) var(p$t[, s]), numeric(1))
    pl <- pool.scalar(Q, U, n = n_sites, k = 1)
    half <- qt(1 - (1 - conf) / 2, pl$df) * sqrt(pl$t)
    res$t0[[nm]] <- Q
    res$t[[nm]] <- lapply(per_imp, function(p) unname(p$t[, s]))
    res$pooled[[nm]] <- list(qbar = pl$qbar, se = sqrt(pl$t), df = pl$df, ci = c(pl$qbar - half, pl$qbar + half))
  }
  out$groups[[key]] <- res
}
write_json(out, file.path(here, "cea_mi_golden.json"), digits = NA, auto_unbox = TRUE, pretty = FALSE)
