# Golden values for phb-eval's net-benefit regression (phb_eval/cea/nbr.py) on cea_nbr_data.csv:
#   NB = lambda * E - cost_total, E = ASCOT-years (scrqol_t0 + scrqol_t1)/2 or QALYs (eq5d_index_t0 + _t1)/2
#   (two waves 12 months apart, 1-year horizon);
#   lm(NB ~ age + sex + condition + <baseline effect> + cost_indirect_pre + one PHB indicator per band x model cell)
#   clubSandwich::vcovCR(cluster = site) CR2 with coef_test(Satterthwaite) and Wald_test(HTZ), and CR1S with
#   Naive-F (what phb-eval uses while the CR2 module is absent).
# Contrasts over the cells (lo.m1, lo.m2, hi.m1, hi.m2): budget size, flexibility, interaction, any difference.
# Output: cea_nbr_golden.json. Run from the repository root:  Rscript tests/golden/cea_nbr.R
suppressPackageStartupMessages({library(clubSandwich); library(jsonlite)})
here <- "tests/golden"
d <- read.csv(file.path(here, "cea_nbr_data.csv"), stringsAsFactors = FALSE, na.strings = c("", "NA"))
d$sex <- factor(d$sex, levels = sort(unique(d$sex), method = "radix"))
d$condition <- factor(d$condition, levels = sort(unique(d$condition), method = "radix"))
cells <- list(c("<1000", "model1"), c("<1000", "model2"), c(">=1000", "model1"), c(">=1000", "model2"))
names(cells) <- c("lo_m1", "lo_m2", "hi_m1", "hi_m2")
for (nm in names(cells)) {
  cc <- cells[[nm]]
  d[[nm]] <- as.numeric(d$phb == 1 & !is.na(d$budget_band) & d$budget_band == cc[1] &
                        d$implementation_model == cc[2])
}
d$ascot_years <- (d$scrqol_t0 + d$scrqol_t1) / 2
d$qaly <- (d$eq5d_index_t0 + d$eq5d_index_t1) / 2
C <- list(budget_size = rbind(c(-1, 0, 1, 0), c(0, -1, 0, 1)),
          flexibility = rbind(c(1, -1, 0, 0), c(0, 0, 1, -1)),
          interaction = rbind(c(1, -1, -1, 1)),
          any_difference = rbind(c(-1, 1, 0, 0), c(-1, 0, 1, 0), c(-1, 0, 0, 1)))
out <- list(R_version = R.version.string, clubSandwich = as.character(packageVersion("clubSandwich")), fits = list())
for (measure in c("ascot_years", "qaly")) {
  base <- if (measure == "qaly") "eq5d_index_t0" else "scrqol_t0"
  for (lam in c(20000, 30000)) {
    d$nb <- lam * d[[measure]] - d$cost_total
    fit <- lm(as.formula(paste("nb ~ age + sex + condition +", base, "+ cost_indirect_pre + lo_m1 + lo_m2 + hi_m1 + hi_m2")), d)
    res <- list()
    for (type in c("CR2", "CR1S")) {
      V <- vcovCR(fit, cluster = d$site, type = type)
      ct <- coef_test(fit, vcov = V, test = "Satterthwaite")
      k <- match(names(cells), rownames(ct))
      tests <- list()
      p <- length(coef(fit))
      for (tn in names(C)) {
        R <- matrix(0, nrow(C[[tn]]), p)
        R[, (p - 3):p] <- C[[tn]]
        w <- Wald_test(fit, constraints = R, vcov = V, test = if (type == "CR2") "HTZ" else "Naive-F")
        tests[[tn]] <- list(statistic = w$Fstat, df1 = w$df_num, df2 = w$df_denom, p = w$p_val)
      }
      res[[type]] <- list(estimate = unname(coef(fit)[names(cells)]), se = ct$SE[k], df = ct$df_Satt[k],
                          p = ct$p_Satt[k], tests = tests)
    }
    out$fits[[paste0(measure, "_", lam)]] <- res
  }
}
write_json(out, file.path(here, "cea_nbr_golden.json"), digits = NA, auto_unbox = TRUE, pretty = FALSE)
