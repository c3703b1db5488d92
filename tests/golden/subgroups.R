# Golden values for phb_eval.subgroups: level-specific effects and joint interaction Wald tests with
# CR1 (sandwich::vcovCL type HC1) errors by site; Holm and BH adjustment with p.adjust.
# The joint test is the Wald statistic over q constraints as an F: W/q on (q, G - 1) df (small-sample
# reference; never chi-square with few clusters).
# Run from the repository root: Rscript tests/golden/subgroups.R  (writes tests/golden/subgroups.csv)
suppressMessages({library(sandwich); library(lmtest)})
d <- read.csv("tests/golden/subgroups_data.csv", stringsAsFactors = FALSE)
d <- d[complete.cases(d[, c("ascot_raw_t1", "ascot_raw_t0", "age", "sex")]), ]
G <- length(unique(d$site))
vc <- function(fit) vcovCL(fit, cluster = ~site, type = "HC1")
out <- data.frame()

# Both-arm variable (condition): interaction model vs main-effects model, Wald chi-square via lmtest.
full <- lm(ascot_raw_t1 ~ phb * condition + ascot_raw_t0 + age + sex, data = d)
reduced <- lm(ascot_raw_t1 ~ phb + condition + ascot_raw_t0 + age + sex, data = d)
w <- waldtest(full, reduced, vcov = vc, test = "Chisq")
q <- -w$Df[2]
out <- rbind(out, data.frame(stratum = "condition", estimate = w$Chisq[2] / q, df = q, df2 = G - 1,
                             p_value = pf(w$Chisq[2] / q, q, G - 1, lower.tail = FALSE), se = NA))
# Level effects: phb coefficient plus the level's interaction (linear combination with the CR1 covariance).
V <- vc(full); b <- coef(full)
for (lvl in sort(unique(d$condition))) {
  L <- setNames(rep(0, length(b)), names(b)); L["phb"] <- 1
  if (lvl != "chc") L[paste0("phb:condition", lvl)] <- 1
  est <- sum(L * b); se <- sqrt(drop(t(L) %*% V %*% L))
  out <- rbind(out, data.frame(stratum = paste0("condition=", lvl), estimate = est, df = G - 1, df2 = NA,
                               p_value = 2 * pt(abs(est / se), G - 1, lower.tail = FALSE), se = se))
}

# PHB-only variable (budget band): level-specific PHB indicators vs all controls; equality test.
dd <- d[d$phb == 0 | !is.na(d$budget_band), ]
dd$phb_lo <- as.numeric(dd$phb == 1 & dd$budget_band == "<1000")
dd$phb_hi <- as.numeric(dd$phb == 1 & dd$budget_band == ">=1000")
fb <- lm(ascot_raw_t1 ~ ascot_raw_t0 + age + sex + condition + phb_lo + phb_hi, data = dd)
# Equality of the two indicators = the hi-vs-lo contrast in the (phb, phb_hi) parametrisation.
fb2 <- lm(ascot_raw_t1 ~ ascot_raw_t0 + age + sex + condition + phb + phb_hi, data = dd)
wb <- waldtest(fb2, . ~ . - phb_hi, vcov = vc, test = "Chisq")
ct <- coeftest(fb, vcov = vc(fb), df = G - 1)
q <- -wb$Df[2]
out <- rbind(out, data.frame(stratum = "budget_band", estimate = wb$Chisq[2] / q, df = q, df2 = G - 1,
                             p_value = pf(wb$Chisq[2] / q, q, G - 1, lower.tail = FALSE), se = NA))
out <- rbind(out, data.frame(stratum = c("budget_band=<1000", "budget_band=>=1000"),
                             estimate = ct[c("phb_lo", "phb_hi"), 1], df = G - 1, df2 = NA,
                             p_value = ct[c("phb_lo", "phb_hi"), 4], se = ct[c("phb_lo", "phb_hi"), 2]))

# Multiplicity over the interaction family, and over the level family.
inter <- !grepl("=", out$stratum)
out$p_holm <- NA; out$p_bh <- NA
for (fam in list(inter, !inter)) {
  out$p_holm[fam] <- p.adjust(out$p_value[fam], "holm")
  out$p_bh[fam] <- p.adjust(out$p_value[fam], "BH")
}
out$r_version <- R.version.string
out$sandwich_version <- as.character(packageVersion("sandwich"))
write.csv(out, "tests/golden/subgroups.csv", row.names = FALSE)
